"""The two ways a chunk of an export reaches the log, and what each row gave.

- The **fast route**: a block the fast path framed whole (``columnar.Framed``: every row taken,
  bad rows aside, ids distinct) is written as framed, when the ledger's state allows: new
  encounters only (the events table's primary key refuses a block holding a known one, and the
  block goes the plain route), decisions always (``decide.decision_block`` leaves out the rows of
  unknown encounters and the decisions already recorded).
- The **plain route**: rows prepared one by one (``prepare``), what the ledger knows of their
  encounters looked up in one query, each row decided (``decide``) and its event built
  (``events.BatchEvents``).

Both write the same bytes for the same row (``tests/unit/test_columnar.py``,
``tests/integration/test_ingest_fast_path.py``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import psycopg

from ledger import decide, lookups, store
from ledger.decide import Known, Outcome
from ledger.ingest import columnar, known, prepare
from ledger.ingest.events import T_DECIDED, T_RECORDED, BatchEvents
from ledger.ingest.report import IngestReport
from ledger.store import EventWriter, NewEvent

_NONE: frozenset[str] = frozenset()


class Chunk(NamedTuple):
    """Rows for the plain route, or a block the fast path framed."""

    rows: list[prepare.Good | prepare.Bad]
    framed: columnar.Framed | None = None

    def __len__(self) -> int:
        return len(self.rows) if self.framed is None else len(self.framed)


class Routes:
    """Writes the chunks of one file (``kind``: encounters or decisions) by either route."""

    def __init__(self, conn: Any, ctx: prepare.RowContext, events: BatchEvents, report: IngestReport):
        self.conn, self.ctx, self.events, self.report = conn, ctx, events, report
        self.encounters = ctx.kind == "encounters"

    @cached_property
    def written(self) -> known.Written:
        """The encounters this batch has written decisions of (``known.decisions_seen``)."""
        return known.Written()

    def write(self, writer: EventWriter, chunk: Chunk) -> None:
        framed = chunk.framed
        if framed is None:
            self.plain(writer, chunk.rows)
        elif not self.encounters:
            self._decisions(writer, framed)
        elif not self._new_encounters(writer, framed):
            self.plain(writer, framed.one_by_one())

    # -- the fast route ------------------------------------------------------------------
    def _new_encounters(self, writer: EventWriter, framed: columnar.Framed) -> bool:
        """Append a framed block of encounters as new ones; False, with nothing written, if one
        of them is stored already.

        No lookup first: every stored encounter has its ``Recorded`` event at version 1, so the
        primary key refuses the block if one is known (this batch's earlier blocks included),
        and the block, written in a savepoint, leaves nothing.
        """
        try:
            with self.conn.transaction():
                recorded = writer.append_framed(framed.rows, framed.ends, T_RECORDED, 1)
        except psycopg.errors.UniqueViolation:
            return False
        self.report.recorded += recorded
        for bad in framed.bad:
            self.report.bad(bad)
        return True

    def _decisions(self, writer: EventWriter, framed: columnar.Framed) -> None:
        """Append a framed block of decisions, each at the version after its encounter's last,
        leaving out those of unknown encounters (quarantined) and those already recorded."""
        assert framed.shas is not None and framed.refs is not None
        latest, recorded = known.decisions_seen(self.conn, framed.ids, framed.ahead,
                                                self.written)
        ids = framed.ids.each()
        versions = np.array([latest.get(oid, 0) for oid in ids], dtype=np.int64)
        decided, unknown = decide.decision_block(
            versions, [recorded.get(oid, _NONE) for oid in ids], framed.shas.tolist())
        self.report.unchanged += int((~decided & ~unknown).sum())
        rows, ends = ((framed.rows, framed.ends) if decided.all()
                      else store.framed_subset(framed.rows, framed.ends, decided))
        self.report.decided += writer.append_framed(rows, ends, T_DECIDED, versions[decided] + 1)
        self.written.add(store.framed_id_bytes(rows, ends))
        # The quarantine in line order, as the plain route fills it.
        missing = np.flatnonzero(unknown)
        unknowns = zip(framed.lines[missing].tolist(), framed.refs[missing].tolist(),
                       strict=True)
        bad = ((row.line, row) for row in framed.bad)
        for line, row in heapq.merge(unknowns, bad, key=lambda item: item[0]):
            if isinstance(row, prepare.Bad):
                self.report.bad(row)
            else:
                self.report.unknown(line, row)

    # -- the plain route -----------------------------------------------------------------
    def plain(self, writer: EventWriter, rows: list[prepare.Good | prepare.Bad]) -> None:
        """Look up what the ledger knows of the rows' encounters, decide each row in line
        order, write the events."""
        ids = lookups.Ids.of({r.oid.bytes for r in rows if isinstance(r, prepare.Good)})
        state = known.known(known.stored(self.conn, ids, facts=self.encounters))
        writer.append(self._events(rows, state))
        if not self.encounters:
            self.written.add(ids)

    def _events(self, rows: list[prepare.Good | prepare.Bad], state: dict[bytes, Known]
                ) -> Iterator[NewEvent]:
        report, events = self.report, self.events
        for r in rows:
            if isinstance(r, prepare.Bad):
                report.bad(r)
                continue
            oid = r.oid.bytes
            before = state.get(oid, Known())
            step = (decide.encounter_row(before, r.payload, r.sha, r.void) if self.encounters
                    else decide.decision_row(before, r.sha))
            state[oid] = step.known
            if step.outcome is Outcome.UNKNOWN:
                report.unknown(r.line, r.ref, void=r.void)
                continue
            report.count(step.outcome)
            version = step.known.version
            if step.outcome is Outcome.RECORDED:
                yield events.recorded(r)
            elif step.outcome is Outcome.CORRECTED:
                yield events.corrected(r, version, step.changed)
            elif step.outcome is Outcome.VOIDED:
                yield events.voided(r, version)
            elif step.outcome is Outcome.DECIDED:
                yield events.decided(r, version)
