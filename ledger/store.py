"""Writing stored events in bulk, in the library's own format, inside its ordering guarantee.

The library orders notifications by taking an EXCLUSIVE lock on the events table for each insert,
so that notification ids are issued in commit order. ``EventWriter`` takes the same lock once for a
whole batch, assigns the following notification ids itself, and streams the rows with COPY,
extending the hash chain as it goes. Every library reader (``repository.get``, the notification
log, projections) reads these rows exactly as if ``Application.save`` had written them.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from psycopg import sql

from ledger.application import EVENTS_TABLE, ClaimsLedger
from ledger.audit.chain import GENESIS, next_link, topic_field

#: Rows sent to the server at a time within a COPY (it stores them while we build the next).
SEND_ROWS = 500

# PostgreSQL's binary COPY framing (see the COPY manual page, "Binary Format").
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_EVENT_HEAD = struct.Struct(">hi16siq")  # 5 fields; originator_id; originator_version
_LENGTH = struct.Struct(">i")
_POSITION = struct.Struct(">iq")  # notification_id
_LINK_ROW = struct.Struct(">hiqi32s")  # 2 fields; notification_id; link
_LINK_HEAD = struct.Struct(">Q16sQ")  # a chain digest's position, id and version


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
    times, then ``finish()`` before the transaction commits.
    """

    #: Only ``bench.chain_cost`` turns this off, to measure what hashing the chain costs.
    hash_links = True

    def __init__(self, conn: psycopg.Connection[Any], lock_timeout_s: int = 600):
        self.conn = conn
        self.lock_timeout_s = lock_timeout_s
        self.head = ChainHead(0, GENESIS)
        self.written = 0
        self._locked = False

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
        if self.head.position != position:
            # Events were written by another path (the library's save): chain them first.
            self._chain_tail(position)
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

    def append(self, events: Iterable[NewEvent]) -> int:
        """Write events with one COPY, assigning positions and chain links. Returns the count.

        The first event is drawn before the COPY starts, so a producer may query the database
        (its lookups) before yielding it, never after. Rows are sent every ``SEND_ROWS`` so the
        server stores them while the next ones are built; the caller bounds the count (a block).
        """
        if not self._locked:
            raise RuntimeError("EventWriter.lock() must be called before append()")
        rows = iter(events)
        first = next(rows, None)
        if first is None:
            return 0
        position = self.head.position
        link = self.head.link
        links: list[bytes] = []
        copy_sql = sql.SQL(
            "COPY {} (originator_id, originator_version, topic, state, notification_id) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(sql.Identifier(EVENTS_TABLE))
        topics: dict[str, bytes] = {}
        sha256 = hashlib.sha256
        hashing = self.hash_links
        # The rows in PostgreSQL's binary COPY format, built here rather than by a dumper per
        # value: a uuid is its 16 bytes, integers big-endian, text and bytea length-prefixed.
        # A topic's COPY field (length + UTF-8) is also exactly its part of the chain digest.
        data = [_COPY_HEADER]
        with self.conn.cursor().copy(copy_sql) as copy:
            for oid, ver, topic, state, state_sha in itertools.chain((first,), rows):
                position += 1
                raw_id = oid if type(oid) is bytes else oid.bytes  # type: ignore[union-attr]
                field = topics.get(topic) or topics.setdefault(topic, topic_field(topic))
                data += (_EVENT_HEAD.pack(5, 16, raw_id, 8, ver), field,
                         _LENGTH.pack(len(state)), state, _POSITION.pack(8, position))
                if hashing:
                    link = sha256(b"".join((link, _LINK_HEAD.pack(position, raw_id, ver), field,
                                            state_sha or sha256(state).digest()))).digest()
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

    def finish(self) -> None:
        """Move the notification-id sequence past the ids used, and wake subscribers."""
        if self.written:
            self.conn.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                (EVENTS_TABLE, self.head.position),
            )
            self.conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(EVENTS_TABLE)))
