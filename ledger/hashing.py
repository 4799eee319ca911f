"""The ingest's hash loops over a block: the encounters' ids (uuid5), the patients' pseudonyms,
the facts' digests and the chain's links.

Each is one call over whole arrays of offsets. ``ledger/_blocks.c`` runs them without the GIL
and without Python's cost per call, so the thread that prepares the next block runs meanwhile; it
is built with the package (``setup.py``: gcc, the Python headers and OpenSSL's, all on this
machine's kind). Where it could not be built, the same loops run here in Python, slower;
``NATIVE`` tells which. ``tests/unit/test_hashing.py`` holds the two to the same bytes.

Measured on this machine, 200 k rows: a ~430-byte digest filled in 0.42 µs a row against
1.6 µs in Python; a chain link over a ~850-byte state 1.0 µs against 2.1-3.2 µs. In DuckDB,
which has no use of the CPU's SHA instructions, the pseudonyms' HMAC cost ~15 k instructions a
row, the ids' SHA-1 and its hex ~3.4 k more than here (callgrind). 1 M encounters prepared
alone: 7.5-7.7 µs a row against 9.0-9.8 before; whole ingests of 1 M encounters, alternated
pairs: 9.3-11.9 s against 11.2-12.0 s, the client's CPU 8.9-11.1 µs an event against
11.6-12.4. 1 M decisions prepared alone: 5.2-5.9 µs a row against 6.0-6.4.
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID, uuid5

import numpy as np

from ledger import pseudonym
from ledger.native import loops as _native

#: Whether the loops run natively.
NATIVE = _native is not None


def fill_hex_digests(rows: bytearray, starts: np.ndarray, ends: np.ndarray, gap: int) -> None:
    """Write the hex SHA-256 of each ``rows[starts[i]:ends[i]]`` at ``rows[ends[i] + gap:]``
    (64 bytes), in place."""
    fill = _native.fill_hex_digests if _native is not None else python_fill_hex_digests
    fill(rows, _offsets(starts), _offsets(ends), gap)


def chain_links(link: bytes, heads: bytes, field: bytes, rows: bytes | bytearray | memoryview,
                starts: np.ndarray, ends: np.ndarray) -> bytes:
    """The chain's next links, 32 bytes each, one after the other.

    Link ``i`` is the SHA-256 of link ``i - 1`` (``link`` before the first), the ``i``-th of
    ``heads`` (equal shares, one per span), ``field``, and the SHA-256 of
    ``rows[starts[i]:ends[i]]``: ``ledger.audit.chain``'s link, its parts already as bytes.
    """
    chain = _native.chain_links if _native is not None else python_chain_links
    return chain(link, heads, field, rows, _offsets(starts), _offsets(ends))


def fill_pseudonyms(rows: bytearray, starts: np.ndarray, ends: np.ndarray, marker: bytes,
                    patients: bytes, patient_ends: np.ndarray, key: bytes) -> None:
    """In each ``rows[starts[i]:ends[i]]``, overwrite the ``pseudonym.HEX_DIGITS`` bytes after the
    first ``marker`` with patient ``i``'s pseudonym digits (``pseudonym.Pseudonymiser``), the
    patients' identifiers (trimmed, UTF-8) given one after the other in ``patients``, each
    ending at its ``patient_ends``. Raises ValueError, before writing, if a span has no marker
    with room after it."""
    fill = _native.fill_pseudonyms if _native is not None else python_fill_pseudonyms
    fill(rows, _offsets(starts), _offsets(ends), marker, pseudonym.HEX_DIGITS, patients,
         _offsets(patient_ends), *pseudonym.hmac_pads(key))


def fill_uuid5(rows: bytearray, at: np.ndarray, namespace: UUID, prefix: bytes,
               names: bytes, name_ends: np.ndarray) -> None:
    """Write at each ``rows[at[i]:]`` the 16 bytes of ``uuid5(namespace, prefix + name_i)``, the
    names (UTF-8) given one after the other in ``names``, each ending at its ``name_ends``."""
    fill = _native.fill_uuid5 if _native is not None else python_fill_uuid5
    fill(rows, _offsets(at), namespace.bytes + prefix, names, _offsets(name_ends))


def python_fill_uuid5(rows: bytearray, at: np.ndarray, prefix: bytes, names: bytes,
                      name_ends: np.ndarray) -> None:
    """``fill_uuid5`` in Python, ``prefix`` beginning with the namespace's 16 bytes."""
    namespace, view, first = UUID(bytes=prefix[:16]), memoryview(rows), 0
    for place, last in zip(at.tolist(), name_ends.tolist(), strict=True):
        name = (prefix[16:] + names[first:last]).decode("utf-8")
        view[place:place + 16] = uuid5(namespace, name).bytes
        first = last


def python_fill_pseudonyms(rows: bytearray, starts: np.ndarray, ends: np.ndarray,
                           marker: bytes, width: int, patients: bytes, patient_ends: np.ndarray,
                           ipad: bytes, opad: bytes) -> None:
    """``fill_pseudonyms`` in Python, the key given as its pads (``pseudonym.hmac_pads``)."""
    places = []
    for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        found = rows.find(marker, start, end)
        if found < 0 or found + len(marker) + width > end:
            raise ValueError(f"span {i} has no marker with room for the pseudonym")
        places.append(found + len(marker))
    key = bytes(b ^ 0x36 for b in ipad)
    view = memoryview(rows)
    first = 0
    for at, last in zip(places, patient_ends.tolist(), strict=True):
        digest = hmac.digest(key, patients[first:last], "sha256")
        view[at:at + width] = digest[:width // 2].hex().encode()
        first = last


def python_fill_hex_digests(rows: bytearray, starts: np.ndarray, ends: np.ndarray,
                            gap: int) -> None:
    """``fill_hex_digests`` in Python."""
    view = memoryview(rows)
    sha256 = hashlib.sha256
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        at = end + gap
        view[at:at + 64] = sha256(view[start:end]).hexdigest().encode()


def python_chain_links(link: bytes, heads: bytes, field: bytes,
                       rows: bytes | bytearray | memoryview, starts: np.ndarray,
                       ends: np.ndarray) -> bytes:
    """``chain_links`` in Python."""
    view = memoryview(rows)
    sha256 = hashlib.sha256
    width = len(heads) // len(starts) if len(starts) else 0
    links: list[bytes] = []
    for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        link = sha256(b"".join((link, heads[i * width:(i + 1) * width], field,
                                sha256(view[start:end]).digest()))).digest()
        links.append(link)
    return b"".join(links)


def _offsets(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64)
