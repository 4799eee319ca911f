"""Writing stored events in bulk, in the library's own format, inside its ordering guarantee.

The library orders notifications by taking an EXCLUSIVE lock on the events table for each insert,
so that notification ids are issued in commit order. ``EventWriter`` takes the same lock once for a
whole batch, assigns the following notification ids itself, and streams the rows with COPY,
extending the hash chain as it goes. Every library reader (``repository.get``, the notification
log, projections) reads these rows exactly as if ``Application.save`` had written them.

``append`` frames events given one by one; ``append_framed`` takes rows framed a block at a time
(``frame_states``) and fills in their versions, positions and chain links over whole arrays.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql

from ledger.application import EVENTS_TABLE, ClaimsLedger
from ledger.chain import GENESIS, link_of, next_link, topic_field
from ledger.errors import UnchainedEventsError
from ledger.seal import Sealer, check_last_seal

#: Rows sent to the server at a time within a COPY (it stores them while we build the next).
SEND_ROWS = 500
#: Rows of a framed block sent at a time, their chain links computed while the server stores
#: them: a slice fits in a Unix socket's buffer (~200 KB; 128 rows ~115 KB), so the server has
#: the next one to store while the links are computed (500 rows gained about half as much).
LINK_SLICE_ROWS = 128

# PostgreSQL's binary COPY framing (see the COPY manual page, "Binary Format").
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_EVENT_HEAD = struct.Struct(">hi16siq")  # 5 fields; originator_id; originator_version
_LENGTH = struct.Struct(">i")
_POSITION = struct.Struct(">iq")  # notification_id
_LINK_ROW = struct.Struct(">hiqi32s")  # 2 fields; notification_id; link
_LINK_HEAD = struct.Struct(">Q16sQ")  # a chain digest's position, id and version
_POSITION_MARK = _LENGTH.pack(8)  # the length before a row's position
_ID_AT = 6  # where a row's aggregate id starts (after the field count and the id's length)
_EVENTS_COPY = sql.SQL(
    "COPY {} (originator_id, originator_version, topic, state, notification_id) "
    "FROM STDIN (FORMAT BINARY)"
).format(sql.Identifier(EVENTS_TABLE))


def frame_parts(topic: str) -> tuple[bytes, bytes, bytes]:
    """The constant bytes of a COPY row of ``topic`` as ``frame_states`` frames it: before the
    id, between the id and the state's length (4 bytes, big-endian), and after the state; the
    version and the position left as zeros."""
    head = _EVENT_HEAD.pack(5, 16, bytes(16), 8, 0)
    return head[:_ID_AT], head[_ID_AT + 16:] + topic_field(topic), _POSITION.pack(8, 0)


def frame_states(states: Sequence[bytes | bytearray] | np.ndarray, topic: str, ids: bytes
                 ) -> tuple[bytearray, np.ndarray]:
    """Event states of ``topic`` and their aggregate ids (16 bytes each, one after the other)
    framed as ``append`` frames them, for ``append_framed``: versions and positions left as
    zeros (``frame_parts``; the fast path frames its rows the same way in SQL). Returns the
    rows, one after the other, and the offset just past each (int64)."""
    before, after, tail = frame_parts(topic)
    length = _LENGTH.pack
    rows = bytearray().join(
        b"".join((before, ids[i * 16:i * 16 + 16], after, length(len(state)), state, tail))
        for i, state in enumerate(states))
    sizes = np.fromiter(map(len, states), np.int64, len(states))
    return rows, np.cumsum(sizes + (len(before) + 16 + len(after) + _LENGTH.size + len(tail)))


def framed_id_bytes(rows: bytes | bytearray, ends: np.ndarray) -> bytes:
    """The aggregate ids (16 bytes each, one after the other) of rows framed by
    ``frame_states``."""
    if not len(ends):
        return b""
    return np.frombuffer(rows, np.uint8)[framed_id_offsets(ends)[:, None] + np.arange(16)].tobytes()


def framed_id_offsets(ends: np.ndarray) -> np.ndarray:
    """Where each aggregate id (16 bytes) starts in rows framed by ``frame_states``."""
    return _row_starts(ends) + _ID_AT


def framed_state_spans(ends: np.ndarray, topic: str) -> tuple[np.ndarray, np.ndarray]:
    """Where each state starts and ends in rows of ``topic`` framed by ``frame_states``."""
    return (_row_starts(ends) + _EVENT_HEAD.size + len(topic_field(topic)) + _LENGTH.size,
            ends - _POSITION.size)


def _row_starts(ends: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(ends), dtype=np.int64)
    starts[1:] = ends[:-1]
    return starts


def framed_subset(rows: bytes | bytearray, ends: np.ndarray, keep: np.ndarray
                  ) -> tuple[bytearray, np.ndarray]:
    """The rows framed by ``frame_states`` where ``keep`` (booleans) is true, and their ends."""
    starts = _row_starts(ends)[keep]
    kept_ends = ends[keep]
    view = memoryview(rows)
    return (bytearray().join(view[s:e] for s, e in zip(starts.tolist(), kept_ends.tolist(),
                                                       strict=True)),
            np.cumsum(kept_ends - starts))


def framed_events(rows: bytes | bytearray, ends: np.ndarray, topic: str
                  ) -> Iterator[tuple[bytes, bytes]]:
    """The (id, state) of each row framed by ``frame_states``."""
    starts, state_ends = framed_state_spans(ends, topic)
    for at, start, end in zip(framed_id_offsets(ends).tolist(), starts.tolist(),
                              state_ends.tolist(), strict=True):
        yield bytes(rows[at:at + 16]), bytes(rows[start:end])


class NewEvent(NamedTuple):
    """A stored event before it has a position (``originator_id``: a UUID or its 16 bytes;
    ``state_sha256``: the state's SHA-256 if the producer already has it)."""

    originator_id: UUID | bytes
    originator_version: int
    topic: str
    state: bytes
    state_sha256: bytes | None = None


def init_schema(conn_info: Any, library_env: Mapping[str, str]) -> None:
    """Create the library's tables and the ledger's own (idempotent).

    Args:
        conn_info: the ``ops.database.Connection`` of the ledger's database.
        library_env: the ``POSTGRES_*`` settings for the library.
    """
    ddl = resources.files("ops").joinpath("sql/schema.sql").read_text(encoding="utf-8")
    with conn_info.connect() as conn:
        # Serialise schema creation across processes: the library's CREATE TABLE IF NOT EXISTS
        # is not safe when two processes run it at once ("tuple concurrently updated").
        conn.execute("SELECT pg_advisory_lock(hashtext('claims-schema'))")
        try:
            app = ClaimsLedger(env=library_env)  # creates the events table if missing
            app.close()
            conn.execute(ddl)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('claims-schema'))")


@dataclass
class ChainHead:
    position: int
    link: bytes


class EventWriter:
    """Appends stored events in one transaction under the library's insert lock.

    Use inside ``with conn.transaction():``. Call ``lock()`` first, ``append()`` any number of
    times, then ``finish()`` before the transaction commits: it seals the new chain head
    (``ledger.seal``), so a writer that writes needs the ``sealer``. ``lock()`` raises
    ``UnchainedEventsError`` if the log holds events past the chain's head, and
    ``UnsealedEventsError`` if the chain goes past its last seal or that seal does not hold
    (written by another path than this writer), unless ``adopt_unchained``: then it chains
    them first, and ``finish()`` seals them.
    """

    #: Only ``bench.chain_cost`` turns this off, to measure what hashing the chain costs.
    hash_links = True

    def __init__(self, conn: psycopg.Connection[Any], sealer: Sealer | None = None, *,
                 lock_timeout_s: int = 600, adopt_unchained: bool = False):
        self.conn = conn
        self.sealer = sealer
        self.adopt_unchained = adopt_unchained
        self.lock_timeout_s = lock_timeout_s
        self.head = ChainHead(0, GENESIS)
        self.written = 0
        self._locked = False
        self._adopted = False

    def lock(self) -> ChainHead:
        """Take the insert lock and read the current last position and chain head."""
        cur = self.conn.cursor()
        cur.execute(f"SET LOCAL lock_timeout = '{int(self.lock_timeout_s)}s'")
        cur.execute(
            sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(EVENTS_TABLE))
        )
        cur.execute(
            sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
                sql.Identifier(EVENTS_TABLE)
            )
        )
        last = cur.fetchone()
        position = int(last[0]) if last else 0
        row = cur.execute(
            "SELECT notification_id, link FROM claims_chain ORDER BY notification_id DESC LIMIT 1"
        ).fetchone()
        self.head = ChainHead(int(row[0]), bytes(row[1])) if row else ChainHead(0, GENESIS)
        # Events written by another path than the ledger: an alarm, unless an operator has
        # reviewed them and adopts them.
        if self.adopt_unchained:
            if self.sealer is None:
                raise RuntimeError("adopting events needs the ledger's sealer")
            if self.head.position != position:
                self._chain_tail(position)
            self._adopted = True
        elif self.head.position != position:
            raise UnchainedEventsError(self.head.position + 1, position)
        check_last_seal(self.conn, self.head.position, self.head.link, self.sealer,
                        adopting=self.adopt_unchained)
        self._locked = True
        return self.head

    def _chain_tail(self, upto: int) -> None:
        cur = self.conn.cursor()
        cur.execute(
            sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {} WHERE notification_id > %s AND notification_id <= %s "
                "ORDER BY notification_id"
            ).format(sql.Identifier(EVENTS_TABLE)),
            (self.head.position, upto),
        )
        rows: list[bytes] = []
        head = self.head
        for nid, oid, ver, topic, state in cur:
            head = ChainHead(nid, next_link(head.link, nid, oid, ver, topic, bytes(state)))
            rows.append(_LINK_ROW.pack(2, 8, nid, 32, head.link))
        self._copy_link_rows(rows)
        self.head = head

    def _copy_link_rows(self, rows: list[bytes]) -> None:
        """COPY chain links already framed as binary COPY rows (``_LINK_ROW``)."""
        if not rows:
            return
        with self.conn.cursor().copy(
            "COPY claims_chain (notification_id, link) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(b"".join((_COPY_HEADER, *rows, _COPY_TRAILER)))

    def append_framed(self, rows: bytearray, ends: np.ndarray, topic: str,
                      versions: int | np.ndarray) -> int:
        """Write events already framed as binary COPY rows by ``frame_states``, all of
        ``topic``, with one COPY. Returns the count.

        Args:
            rows: the rows, one after the other; their versions and positions are filled in here.
            ends: the offset just past each row (int64).
            topic: the topic the rows were framed with (checked).
            versions: the events' version: one for all, or one per row.

        The versions, positions, chain heads and link rows are computed over whole arrays; only
        the chain itself (each link hashes the one before) is a loop.
        """
        self._check_writable("append_framed")
        count = len(ends)
        if count == 0:
            return 0
        data = np.frombuffer(rows, dtype=np.uint8)
        starts = _row_starts(ends)
        field = topic_field(topic)
        # Checked: each row starts with the field count (5), has the topic's field after the
        # fixed head and the position's length before the position; so ``ends`` fits ``rows``.
        if (ends[-1] != len(rows) or data[starts].any() or (data[starts + 1] != 5).any()
                or (data[(starts + _EVENT_HEAD.size)[:, None] + np.arange(len(field))]
                    != np.frombuffer(field, np.uint8)).any()
                or (data[(ends - _POSITION.size)[:, None] + np.arange(_LENGTH.size)]
                    != np.frombuffer(_POSITION_MARK, np.uint8)).any()):
            raise ValueError(f"append_framed: rows not framed by frame_states for {topic}")
        # Big-endian 8-byte integers, filled in at their place in each row: the version ends
        # the fixed head, the position ends the row.
        version_values = np.empty(count, dtype=">i8")
        version_values[:] = versions
        version_bytes = version_values.view(np.uint8).reshape(count, 8)
        data[(starts + _EVENT_HEAD.size - 8)[:, None] + np.arange(8)] = version_bytes
        position = self.head.position
        positions = np.arange(position + 1, position + count + 1, dtype=">i8")
        position_bytes = positions.view(np.uint8).reshape(count, 8)
        data[(ends - 8)[:, None] + np.arange(8)] = position_bytes
        # The chain digest's head of each row: position, id (from the row) and version; and
        # where each row's state is.
        heads = np.empty((count, _LINK_HEAD.size), dtype=np.uint8)
        heads[:, :8] = position_bytes
        heads[:, 8:24] = data[(starts + _ID_AT)[:, None] + np.arange(16)]
        heads[:, 24:] = version_bytes
        chain_heads = [bytes(h) for h in heads]
        state_starts, state_ends = framed_state_spans(ends, topic)
        # The rows go to the server a slice at a time, each slice's links computed while the
        # server stores the slice before.
        view = memoryview(rows)
        sha256 = hashlib.sha256
        link = self.head.link
        links: list[bytes] = []
        with self.conn.cursor().copy(_EVENTS_COPY) as copy:
            copy.write(_COPY_HEADER)
            for first in range(0, count, LINK_SLICE_ROWS):
                last = min(first + LINK_SLICE_ROWS, count)
                copy.write(view[int(starts[first]):int(ends[last - 1])])
                if self.hash_links:
                    digests = [sha256(view[start:end]).digest() for start, end in zip(
                        state_starts[first:last].tolist(), state_ends[first:last].tolist(),
                        strict=True)]
                    for head, digest in zip(chain_heads[first:last], digests, strict=True):
                        link = link_of(link, head, field, digest)
                        links.append(link)
            copy.write(_COPY_TRAILER)
        chain = b"".join(links) if self.hash_links else link * count
        link_rows = np.empty((count, _LINK_ROW.size), dtype=np.uint8)
        link_rows[:, :6] = np.frombuffer(_LINK_ROW.pack(2, 8, 0, 32, bytes(32))[:6], np.uint8)
        link_rows[:, 6:14] = position_bytes
        link_rows[:, 14:18] = np.frombuffer(_LENGTH.pack(32), np.uint8)
        link_rows[:, 18:] = np.frombuffer(chain, np.uint8).reshape(count, 32)
        self._copy_link_rows([link_rows.tobytes()])
        self.head = ChainHead(position + count, link)
        self.written += count
        return count

    def append(self, events: Iterable[NewEvent]) -> int:
        """Write events with one COPY, assigning positions and chain links. Returns the count.

        The first event is drawn before the COPY starts, so a producer may query the database
        (its lookups) before yielding it, never after. Rows are sent every ``SEND_ROWS`` so the
        server stores them while the next ones are built; the caller bounds the count (a block).
        """
        self._check_writable("append")
        rows = iter(events)
        first = next(rows, None)
        if first is None:
            return 0
        position = self.head.position
        link = self.head.link
        links: list[bytes] = []
        topics: dict[str, bytes] = {}
        sha256 = hashlib.sha256
        hashing = self.hash_links
        # The rows in PostgreSQL's binary COPY format, built here rather than by a dumper per
        # value: a uuid is its 16 bytes, integers big-endian, text and bytea length-prefixed.
        # A topic's COPY field (length + UTF-8) is also exactly its part of the chain digest.
        data = [_COPY_HEADER]
        with self.conn.cursor().copy(_EVENTS_COPY) as copy:
            for oid, ver, topic, state, state_sha in itertools.chain((first,), rows):
                position += 1
                raw_id = oid if type(oid) is bytes else oid.bytes  # type: ignore[union-attr]
                field = topics.get(topic) or topics.setdefault(topic, topic_field(topic))
                data += (_EVENT_HEAD.pack(5, 16, raw_id, 8, ver), field,
                         _LENGTH.pack(len(state)), state, _POSITION.pack(8, position))
                if hashing:
                    link = link_of(link, _LINK_HEAD.pack(position, raw_id, ver), field,
                                   state_sha or sha256(state).digest())
                links.append(_LINK_ROW.pack(2, 8, position, 32, link))
                if len(data) >= SEND_ROWS * 5:
                    copy.write(b"".join(data))
                    data = []
            data.append(_COPY_TRAILER)
            copy.write(b"".join(data))
        self._copy_link_rows(links)
        count = position - self.head.position
        self.head = ChainHead(position, link)
        self.written += count
        return count

    def _check_writable(self, method: str) -> None:
        if not self._locked:
            raise RuntimeError(f"EventWriter.lock() must be called before {method}()")
        if self.sealer is None:
            raise RuntimeError("an EventWriter without a sealer cannot write: it could not "
                               "seal what it writes")

    def finish(self) -> None:
        """Seal the new chain head, move the notification-id sequence past the ids used, and
        wake subscribers."""
        if (self.written or self._adopted) and self.head.position:
            assert self.sealer is not None  # checked before anything was written or adopted
            self.conn.execute(
                "INSERT INTO claims_chain_seals (notification_id, seal) VALUES (%s, %s) "
                "ON CONFLICT (notification_id) DO NOTHING",
                (self.head.position, self.sealer.seal(self.head.position, self.head.link)))
        if self.written:
            self.conn.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                (EVENTS_TABLE, self.head.position),
            )
            self.conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(EVENTS_TABLE)))
