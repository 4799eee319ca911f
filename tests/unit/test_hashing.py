"""The native hash loops (``ledger/_blocks.c``) give the bytes of their Python reference, and
the chain's links are ``ledger.audit.chain``'s.

The install builds the native module (gcc, the Python headers and OpenSSL's are on this machine's
kind); where it could not, the ingest runs the Python loops, but these tests fail rather than skip:
a test that skips proves nothing.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any
from uuid import UUID

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import domain, hashing, pseudonym
from ledger.audit.chain import next_link, topic_field
from ledger.pseudonym import Pseudonymiser

NOT_BUILT = "ledger._blocks was not built: see the install's warnings"


@pytest.fixture
def native() -> None:
    """The native loops are there: the tests that use this fixture test them, not Python's."""
    assert hashing.NATIVE, NOT_BUILT


def _native(fill: Any) -> Any:
    """``fill`` (a ``hashing`` function), refused unless it runs the native loop."""
    def run(*args: Any) -> Any:
        assert hashing.NATIVE, NOT_BUILT
        return fill(*args)
    return run
TOPIC = "ledger.domain:Encounter.Recorded"

spans = st.lists(st.binary(max_size=300), max_size=40)


def _laid_out(parts: list[bytes], gap: int) -> tuple[bytearray, np.ndarray, np.ndarray]:
    """``parts`` one after the other, each followed by ``gap`` bytes and a 64-byte hole."""
    rows = bytearray()
    starts, ends = [], []
    for part in parts:
        starts.append(len(rows))
        rows += part
        ends.append(len(rows))
        rows += b"-" * gap + b"?" * 64
    return rows, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


@pytest.mark.usefixtures("native")
@settings(max_examples=60, deadline=None)
@given(parts=spans, gap=st.integers(0, 20))
def test_the_native_fill_writes_what_python_writes(parts: list[bytes], gap: int) -> None:
    rows, starts, ends = _laid_out(parts, gap)
    expected = bytearray(rows)
    hashing.python_fill_hex_digests(expected, starts, ends, gap)
    hashing.fill_hex_digests(rows, starts, ends, gap)
    assert rows == expected
    for part, end in zip(parts, ends.tolist(), strict=True):
        assert rows[end + gap:end + gap + 64] == hashlib.sha256(part).hexdigest().encode()


@settings(max_examples=60, deadline=None)
@given(parts=spans, position=st.integers(0, 2**40), seed=st.binary(min_size=32, max_size=32))
def test_the_chain_links_are_the_audit_chain_links(parts: list[bytes], position: int,
                                                   seed: bytes) -> None:
    rows, starts, ends = _laid_out(parts, 0)
    ids = [UUID(bytes=hashlib.md5(part + bytes([i % 256])).digest()) for i, part in enumerate(parts)]
    heads = b"".join(struct.pack(">Q16sQ", position + i + 1, oid.bytes, i % 3 + 1)
                     for i, oid in enumerate(ids))
    field = topic_field(TOPIC)
    expected, link = [], seed
    for i, (oid, part) in enumerate(zip(ids, parts, strict=True)):
        link = next_link(link, position + i + 1, oid, i % 3 + 1, TOPIC, part)
        expected.append(link)
    assert hashing.python_chain_links(seed, heads, field, rows, starts, ends) == b"".join(expected)
    assert hashing.chain_links(seed, heads, field, rows, starts, ends) == b"".join(expected)


@pytest.mark.parametrize("fill", [
    pytest.param(_native(hashing.fill_uuid5), id="native"),
    pytest.param(lambda rows, at, namespace, prefix, names, ends: hashing.python_fill_uuid5(
        rows, at, namespace.bytes + prefix, names, ends), id="python"),
])
@settings(max_examples=40, deadline=None)
@given(refs=st.lists(st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=30)),
                     max_size=30))
def test_the_ids_filled_in_are_the_encounters_ids(fill, refs: list[tuple[str, str]]) -> None:
    names = [f"{association}\x1f{ref}".encode() for association, ref in refs]
    rows = bytearray(b"-" * (20 * len(refs) + 4))
    at = np.arange(len(refs), dtype=np.int64) * 20 + 2
    fill(rows, at, domain.NAMESPACE, b"encounter:", b"".join(names),
         np.cumsum([len(n) for n in names], dtype=np.int64))
    for (association, ref), place in zip(refs, at.tolist(), strict=True):
        assert bytes(rows[place:place + 16]) == domain.encounter_id(association, ref).bytes
        assert rows[place - 2:place] == b"--" and rows[place + 16:place + 18] == b"--"


MARKER = b'"patient_pseudonym":"ph_'
PLACE = b"0" * pseudonym.HEX_DIGITS
patients = st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
                    .map(str.strip).filter(bool), max_size=30)


def _with_pseudonyms(identifiers: list[str]) -> tuple[bytearray, np.ndarray, np.ndarray]:
    """A span per identifier, holding the marker and the place of the pseudonym's digits."""
    parts = [b'{"a":"x",' + MARKER + PLACE + b'","b":1}' for _ in identifiers]
    rows, starts, ends = _laid_out(parts, 0)
    return rows, starts, ends


@pytest.mark.parametrize("fill", [
    pytest.param(_native(hashing.fill_pseudonyms), id="native"),
    pytest.param(lambda rows, starts, ends, marker, ids, id_ends, key:
                 hashing.python_fill_pseudonyms(rows, starts, ends, marker,
                                                pseudonym.HEX_DIGITS, ids, id_ends,
                                                *pseudonym.hmac_pads(key)), id="python"),
])
@settings(max_examples=40, deadline=None)
@given(identifiers=patients, key=st.binary(min_size=16, max_size=100))
def test_the_pseudonyms_filled_in_are_the_pseudonymisers(fill, identifiers: list[str],
                                                         key: bytes) -> None:
    rows, starts, ends = _with_pseudonyms(identifiers)
    encoded = [i.encode("utf-8") for i in identifiers]
    fill(rows, starts, ends, MARKER, b"".join(encoded),
         np.cumsum([len(e) for e in encoded], dtype=np.int64), key)
    pseudonymise = Pseudonymiser(key)
    for identifier, start, end in zip(identifiers, starts.tolist(), ends.tolist(), strict=True):
        assert bytes(rows[start:end]) == (b'{"a":"x","patient_pseudonym":"'
                                          + pseudonymise(identifier).encode() + b'","b":1}')


@pytest.mark.usefixtures("native")
def test_a_span_without_room_for_the_pseudonym_is_refused_before_any_is_written() -> None:
    rows, starts, ends = _with_pseudonyms(["first", "second"])
    ends[1] -= 12  # the second's marker is there, its place cut short
    before = bytes(rows)
    with pytest.raises(ValueError, match="span 1"):
        hashing.fill_pseudonyms(rows, starts, ends, MARKER, b"firstsecond",
                                np.array([5, 11], dtype=np.int64), b"k" * 16)
    assert bytes(rows) == before


@pytest.mark.usefixtures("native")
@pytest.mark.parametrize(("starts", "ends", "gap"), [
    ([0], [200], 0),      # past the end
    ([5], [4], 0),        # ends before it starts
    ([-1], [4], 0),       # before the start
    ([0], [100], 40),     # the digest would not fit
    ([0, 1], [4], 0),     # not one end per start
])
def test_the_native_fill_refuses_spans_outside_the_rows(starts: list[int], ends: list[int],
                                                        gap: int) -> None:
    rows = bytearray(180)
    with pytest.raises(ValueError):
        hashing.fill_hex_digests(rows, np.array(starts), np.array(ends), gap)
    assert rows == bytearray(180)


@pytest.mark.usefixtures("native")
def test_the_native_chain_refuses_a_short_link_or_uneven_heads() -> None:
    rows, starts, ends = _laid_out([b"a", b"b"], 0)
    field = topic_field(TOPIC)
    with pytest.raises(ValueError):
        hashing.chain_links(bytes(31), bytes(64), field, rows, starts, ends)
    with pytest.raises(ValueError):
        hashing.chain_links(bytes(32), bytes(63), field, rows, starts, ends)
    with pytest.raises(ValueError):
        hashing.chain_links(bytes(32), bytes(64), field, rows, starts, ends + len(rows))


def test_the_native_loops_are_built_here() -> None:
    assert hashing.NATIVE, NOT_BUILT
