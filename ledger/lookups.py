"""Reading events by many aggregate ids at once (``originator_id = ANY(...)``): by the primary key.

A bulk load leaves the events table without statistics until ANALYZE (autovacuum's comes later,
and an ingest holding the insert lock keeps it off the table). For thousands of ids the planner
then expects millions of rows (so it may too with an underestimated count of distinct ids) and
scans the whole table in parallel workers. On the national
year's ledger (7.7 M events), without statistics:

- an ingest block's lookup of ~43 k ids: 1.6-4.6 s instead of 0.05-0.4 s by the index;
- an audit extract's read of 5,000 encounters' events: 954 ms (parallel seq scan) instead of
  57 ms (the chain's links by position, 10,000 at a time, kept to their index: 132 ms).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_SETTINGS = ("max_parallel_workers_per_gather", "enable_seqscan", "enable_bitmapscan")
#: Inside a transaction: plan the following statements by index, in one process (``SET LOCAL``).
BY_PRIMARY_KEY = "; ".join(f"SET LOCAL {name} = {'0' if name.startswith('max') else 'off'}"
                           for name in _SETTINGS)
_DEFAULTS = "; ".join(f"SET LOCAL {name} TO DEFAULT" for name in _SETTINGS)


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
