"""Rows framed a block at a time (``frame_states``) reach PostgreSQL as the writer's own framing
would.

The writer's two paths are run against a recording stand-in for the connection (framing is pure
byte work); ``tests/integration/test_ingest_fast_path.py`` checks the stored result on a real
server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import store
from ledger.chain import GENESIS, next_link
from ledger.seal import Sealer
from ledger.store import ChainHead, EventWriter, NewEvent

TOPIC = "ledger.domain:Encounter.Recorded"


class _Recorder:
    """Records what each COPY statement is sent."""

    def __init__(self) -> None:
        self.copies: list[tuple[str, bytes]] = []

    def cursor(self) -> _Recorder:
        return self

    @contextmanager
    def copy(self, statement: Any) -> Iterator[_Recorder]:
        self._sent: list[bytes] = []
        yield self
        self.copies.append((str(statement), b"".join(self._sent)))

    def write(self, data: Any) -> None:
        self._sent.append(bytes(data))


def _writer(position: int, link: bytes) -> tuple[EventWriter, _Recorder]:
    recorder = _Recorder()
    writer = EventWriter(recorder, Sealer(b"key"))  # type: ignore[arg-type]
    writer.head = ChainHead(position, link)
    writer._locked = True
    return writer, recorder


def _framed(events: list[NewEvent]) -> tuple[bytearray, np.ndarray]:
    """The events framed with ``frame_states``."""
    return store.frame_states([e.state for e in events], TOPIC,
                              b"".join(bytes(e.originator_id) for e in events))


states = st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(states=states, oids=st.randoms(use_true_random=False),
       position=st.integers(0, 2**40), versions=st.integers(1, 2**40) | st.just(None))
def test_framed_rows_send_the_bytes_append_sends(states: list[bytes], oids: Any,
                                                 position: int, versions: int | None) -> None:
    """One version for all rows, or one per row (None: drawn per row)."""
    each = [versions or oids.randint(1, 2**40) for _ in states]
    events = [NewEvent(oids.randbytes(16), v, TOPIC, s) for v, s in zip(each, states, strict=True)]
    plain, plain_sent = _writer(position, b"\x07" * 32)
    framed, framed_sent = _writer(position, b"\x07" * 32)
    assert plain.append(events) == len(events)
    rows, ends = _framed(events)
    assert framed.append_framed(rows, ends, TOPIC, versions or np.array(each)) == len(events)
    assert framed_sent.copies == plain_sent.copies  # the event rows, then the chain links
    assert framed.head == plain.head and framed.written == plain.written == len(events)
    assert list(store.framed_events(rows, ends, TOPIC)) == [
        (e.originator_id, e.state) for e in events]


def test_the_chain_of_framed_rows_is_the_chain_verify_recomputes() -> None:
    events = [NewEvent(bytes([i]) * 16, 1, TOPIC, b'{"n":%d}' % i) for i in range(5)]
    writer, _ = _writer(0, GENESIS)
    writer.append_framed(*_framed(events), TOPIC, 1)
    link = GENESIS
    for position, e in enumerate(events, start=1):
        link = next_link(link, position, UUID(bytes=bytes(e.originator_id)), 1, TOPIC, e.state)
    assert writer.head == ChainHead(5, link)


@settings(max_examples=40, deadline=None)
@given(states=st.lists(st.binary(max_size=300), max_size=40))
def test_states_as_duckdb_hands_them_are_framed_as_bytes(states: list[bytes]) -> None:
    handed = np.empty(len(states), dtype=object)  # as DuckDB hands them: bytearrays
    for i, state in enumerate(states):
        handed[i] = bytearray(state)
    ids = b"".join(bytes([i % 256]) * 16 for i in range(len(states)))
    framed = store.frame_states(handed, TOPIC, ids)
    plain = store.frame_states(states, TOPIC, ids)
    assert framed[0] == plain[0] and list(framed[1]) == list(plain[1])
    assert [s for _, s in store.framed_events(*plain, TOPIC)] == states
    assert store.framed_id_bytes(*plain) == ids


def test_framing_refuses_a_state_that_is_not_bytes() -> None:
    with pytest.raises(TypeError):
        store.frame_states([b"{}", "{}"], TOPIC, bytes(32))


def test_rows_not_framed_by_frame_states_are_refused() -> None:
    events = [NewEvent(bytes(16), 1, TOPIC, b"{}")]
    rows, ends = _framed(events)
    writer, _ = _writer(0, GENESIS)
    with pytest.raises(ValueError, match="not framed"):
        writer.append_framed(rows + b"x", ends + 1, TOPIC, 1)
    with pytest.raises(ValueError, match="not framed"):
        writer.append_framed(rows, ends + 1, TOPIC, 1)
    with pytest.raises(ValueError, match="not framed"):
        writer.append_framed(rows, ends, TOPIC.replace("Recorded", "Recorder"), 1)
    assert writer.written == 0


@settings(max_examples=40, deadline=None)
@given(states=states, keep=st.randoms(use_true_random=False))
def test_a_subset_of_framed_rows_is_those_rows_framed_alone(states: list[bytes],
                                                           keep: Any) -> None:
    events = [NewEvent(bytes([i]) * 16, 1, TOPIC, s) for i, s in enumerate(states)]
    chosen = np.array([keep.random() < 0.6 for _ in events], dtype=bool)
    rows, ends = _framed(events)
    sub_rows, sub_ends = store.framed_subset(rows, ends, chosen)
    alone = [e for e, c in zip(events, chosen, strict=True) if c]
    if not alone:
        assert (sub_rows, list(sub_ends)) == (bytearray(), [])
        return
    alone_rows, alone_ends = _framed(alone)
    assert (sub_rows, list(sub_ends)) == (alone_rows, list(alone_ends))
