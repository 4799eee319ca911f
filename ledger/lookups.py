"""Reading events by many aggregate ids at once (``originator_id = ANY(...)``): by the primary key,
on a table settled first when that pays.

**Plans.** A bulk load leaves the events table without statistics until ANALYZE (autovacuum's
comes later, and an ingest holding the insert lock keeps it off the table). For thousands of ids
the planner then expects millions of rows (so it may too with an underestimated count of
distinct ids) and scans the whole table in parallel workers, far slower than the primary key.
The ingest's lookups and an audit extract's reads are therefore planned ``BY_PRIMARY_KEY``
(docs/decisions.md: "Lookups by many ids planned by the primary key", "Audit extract's events
read by the primary key").

**Settling.** A decisions file's lookups read versions from the primary key alone (index-only),
but until VACUUM has marked the freshly written pages all-visible each id also visits the heap,
where its first reader sets the rows' hint bits (and, with data checksums, logs the page again).
``settle`` vacuums first when the lookups to come outnumber the pages left to mark
(docs/decisions.md: "Vacuum before a large decisions file").

**Ids.** A lookup's ids go as one binary ``uuid[]`` parameter (``Ids``, the 16-byte ids one after
the other): the server then parses no text, and the ids are framed without a Python object per id.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from psycopg import adapt, postgres, pq, sql

from ledger.application import EVENTS_TABLE

_SETTINGS = ("max_parallel_workers_per_gather", "enable_seqscan", "enable_bitmapscan")
#: Inside a transaction: plan the following statements by index, in one process (``SET LOCAL``).
BY_PRIMARY_KEY = "; ".join(f"SET LOCAL {name} = {'0' if name.startswith('max') else 'off'}"
                           for name in _SETTINGS)
_DEFAULTS = "; ".join(f"SET LOCAL {name} TO DEFAULT" for name in _SETTINGS)

#: Lookups per page left to mark all-visible from which ``settle`` vacuums: about where the
#: lookups made index-only pay back the vacuum; under it the vacuum is left to autovacuum (which
#: does the same work later) (docs/decisions.md: "Vacuum before a large decisions file").
SETTLE_LOOKUPS_PER_PAGE = 3
_UNSETTLED_PAGES = ("SELECT pg_relation_size(oid) / current_setting('block_size')::int "
                    "- relallvisible FROM pg_class WHERE oid = %s::regclass")


class Ids(bytes):
    """Aggregate ids, 16 bytes each, one after the other: a lookup's ``uuid[]`` parameter (passed
    as ``%b``, on a cursor from ``cursor``).

    Sent in PostgreSQL's binary array format, built over whole arrays: the server parses no
    text, and a lookup takes less time than with a text literal of the same ids
    (docs/decisions.md: "Lookup ids sent as a binary uuid[]").
    """

    @classmethod
    def of(cls, ids: Iterable[bytes]) -> Ids:
        return cls(b"".join(ids))

    def each(self) -> list[bytes]:
        """The ids one by one."""
        return [self[i:i + 16] for i in range(0, len(self), 16)]


_UUID = postgres.types["uuid"]
_ID_LENGTH = np.frombuffer(struct.pack(">i", 16), np.uint8)


class _IdsDumper(adapt.Dumper):
    """``Ids`` as a binary one-dimensional ``uuid[]`` without nulls: the array's header, then
    each id after its length."""

    format = pq.Format.BINARY
    oid = _UUID.array_oid

    def dump(self, obj: Any) -> bytes:
        ids = np.frombuffer(obj, np.uint8).reshape(-1, 16)
        if not len(ids):
            return struct.pack(">iiI", 0, 0, _UUID.oid)
        framed = np.empty((len(ids), 20), np.uint8)
        framed[:, :4] = _ID_LENGTH
        framed[:, 4:] = ids
        return struct.pack(">iiIii", 1, 0, _UUID.oid, len(ids), 1) + framed.tobytes()


def cursor(conn: Any) -> Any:
    """A binary cursor of ``conn`` that sends ``Ids`` as ``uuid[]``."""
    cur = conn.cursor(binary=True)
    cur.adapters.register_dumper(Ids, _IdsDumper)
    return cur


@contextmanager
def by_primary_key(conn: Any) -> Iterator[None]:
    """Inside a transaction: the statements run in the block are planned ``BY_PRIMARY_KEY``; the
    settings go back to their defaults after it (the transaction's other queries keep their
    plans)."""
    conn.execute(BY_PRIMARY_KEY)
    try:
        yield
    finally:
        conn.execute(_DEFAULTS)


def settle(conn: Any, lookups: int) -> bool:
    """VACUUM the events table before ``lookups`` index-only lookups, if they are at least
    ``SETTLE_LOOKUPS_PER_PAGE`` times the pages not yet marked all-visible. Returns whether it
    did.

    Only on an autocommit connection outside a transaction (VACUUM cannot run in one). Another
    batch holding the insert lock makes it skip (``SKIP_LOCKED``), as does a role that may not
    vacuum the table (a warning, not an error). Its buffer ring is lifted (PostgreSQL 16+): with
    the default ring, VACUUM flushed WAL and wrote pages for each turn of it (docs/decisions.md:
    "VACUUM without its buffer ring").
    """
    if not conn.autocommit or conn.info.transaction_status != pq.TransactionStatus.IDLE:
        return False
    row = conn.execute(_UNSETTLED_PAGES, (EVENTS_TABLE,)).fetchone()
    unsettled = int(row[0]) if row else 0
    if unsettled <= 0 or lookups < SETTLE_LOOKUPS_PER_PAGE * unsettled:
        return False
    options = "SKIP_LOCKED" + (", BUFFER_USAGE_LIMIT 0" if conn.info.server_version >= 160000
                               else "")
    conn.execute(sql.SQL(f"VACUUM ({options}) {{}}").format(sql.Identifier(EVENTS_TABLE)))
    return True
