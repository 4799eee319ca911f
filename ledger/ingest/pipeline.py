"""Ingesting one export file into the ledger: all-or-nothing, idempotent, nothing lost.

A file is one import batch, written in one transaction under the event table's insert lock: a
crash at any moment leaves either the whole batch or nothing, and running the same command again
completes it. Rows are streamed (memory does not grow with the file), prepared a block at a time
in a background thread (by DuckDB where the rows allow, see ``columnar``; row by row otherwise)
and looked up a block at a time (a block the fast path took whole is written as DuckDB framed it,
``columnar.Framed``, when the ledger's state allows):

- a new encounter becomes ``Encounter.Recorded``;
- a known one with the same facts is unchanged (re-ingesting a file writes nothing);
- a known one with other facts becomes ``Encounter.Corrected`` (``status=void``: ``Voided``);
- a decision row becomes ``Encounter.Decided`` unless the same decision is already recorded;
- a bad row is quarantined (file, line, column, reason, its text with the patient pseudonymised)
  in the batch's ``ImportBatch.Completed`` event.
"""

from __future__ import annotations

import heapq
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from queue import Queue
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np
import orjson
import psycopg
from eventsourcing.utils import get_topic
from psycopg import sql

from ledger import domain, keycheck, lookups, store
from ledger.application import EVENTS_TABLE
from ledger.errors import BatchInterruptedError, InputFileError, Problem
from ledger.ingest import columnar, encode, prepare, reader
from ledger.ingest.profiles import Profile
from ledger.ingest.rows import (
    DECISION_COLUMNS,
    DECISION_REQUIRED,
    ENCOUNTER_COLUMNS,
    ENCOUNTER_REQUIRED,
)
from ledger.persistence import event_state
from ledger.pseudonym import Pseudonymiser
from ledger.store import EventWriter, NewEvent
from projections.facts import PARIS

LOOKUP_CHUNK = 5000

T_RECORDED = get_topic(domain.Encounter.Recorded)
T_CORRECTED = get_topic(domain.Encounter.Corrected)
T_VOIDED = get_topic(domain.Encounter.Voided)
T_DECIDED = get_topic(domain.Encounter.Decided)
T_COMPLETED = get_topic(domain.ImportBatch.Completed)
FACT_TOPICS = (T_RECORDED, T_CORRECTED)
#: A stored event as a lookup fetches it: id (16 bytes), version, topic, state (or None).
_Stored = tuple[bytes, int, str, bytes | None]
#: The stored events of some aggregates (``lookups.Ids``): their states unless they are facts and
#: the facts are not wanted.
_EVENTS = sql.SQL(
    "SELECT uuid_send(originator_id), originator_version, topic, "
    "CASE WHEN %s OR NOT topic = ANY(%s) THEN state END FROM {} "
    "WHERE originator_id = ANY(%b) ORDER BY originator_id, originator_version"
).format(sql.Identifier(EVENTS_TABLE))
#: The versions stored of some aggregates (``lookups.Ids``), from the primary key.
_VERSIONS = sql.SQL(
    "SELECT uuid_send(originator_id), originator_version FROM {} "
    "WHERE originator_id = ANY(%b) ORDER BY originator_id, originator_version"
).format(sql.Identifier(EVENTS_TABLE))

#: A prepared row: taken whole by the fast path, or prepared row by row (good or bad).
Prepared = columnar.Taken | prepare.Good | prepare.Bad


class Chunk(NamedTuple):
    """Prepared rows with the ids they touch (``lookups.Ids``), both made off the main
    thread so that it only looks up, decides and writes. A block the fast path took whole (bad
    rows aside) comes ``framed`` instead of as rows, its ids made only if a lookup needs them
    (``Framed.ids``)."""

    rows: list[Prepared]
    row_ids: lookups.Ids = lookups.Ids()
    framed: columnar.Framed | None = None

    @classmethod
    def of(cls, rows: list[Prepared]) -> Chunk:
        ids = {r.oid if isinstance(r, columnar.Taken) else r.oid.bytes
               for r in rows if not isinstance(r, prepare.Bad)}
        return cls(rows, lookups.Ids.of(ids))

    @property
    def ids(self) -> lookups.Ids:
        return self.row_ids if self.framed is None else self.framed.ids

    def __len__(self) -> int:
        return len(self.rows) if self.framed is None else len(self.framed)


@dataclass
class IngestReport:
    """What one file gave: counts of events by kind, and the quarantined rows."""

    file: str
    kind: str
    sha256: str
    batch_id: UUID
    encoding: str
    rows: int = 0
    recorded: int = 0
    corrected: int = 0
    voided: int = 0
    decided: int = 0
    unchanged: int = 0
    new_events: int = 0
    already_ingested: bool = False
    quarantined: list[Problem] = field(default_factory=list)
    dry_run: bool = False  # the counts are what would be written; nothing was

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file, "kind": self.kind, "sha256": self.sha256,
            "batch_id": str(self.batch_id), "encoding": self.encoding, "rows": self.rows,
            "new_events": self.new_events, "recorded": self.recorded,
            "corrected": self.corrected, "voided": self.voided, "decided": self.decided,
            "unchanged": self.unchanged, "already_ingested": self.already_ingested,
            "quarantined": [p.as_json() for p in self.quarantined], "dry_run": self.dry_run,
        }


@dataclass(slots=True)
class _Known:
    """The latest state of an aggregate as stored, for idempotency and corrections.

    The latest facts are kept as they came (a stored state, or a correction's facts JSON) and
    parsed only when a row needs them: most rows of a file never do.
    """

    version: int = 0
    fact_state: bytes | None = None  # the latest Recorded/Corrected state as stored
    facts_text: str | None = None    # or the facts JSON of a correction made in this batch
    facts_sha: str | None = None     # their SHA-256, once known
    voided: bool = False
    decision_hashes: set[str] = field(default_factory=set)
    batch_completed: dict[str, Any] | None = None  # an import batch's latest Completed event

    def facts_sha256(self) -> str | None:
        if self.facts_sha is None and self.fact_state is not None:
            self.facts_sha = orjson.loads(self.fact_state)["facts_sha256"]
        return self.facts_sha

    def old_facts(self) -> dict[str, Any]:
        if self.facts_text is not None:
            return dict(orjson.loads(self.facts_text))
        if self.fact_state is not None:
            return dict(orjson.loads(self.fact_state)["facts"])
        return {}

    def set_facts(self, facts_text: str, sha: str) -> None:
        self.fact_state, self.facts_text, self.facts_sha = None, facts_text, sha


def detect_kind(header: list[str]) -> str:
    if "decided_at" in header:
        return "decisions"
    if "performed_at" in header:
        return "encounters"
    return "unknown"


def ingest_file(
    conn: Any,
    path: Path,
    pseudonymise: Pseudonymiser,
    *,
    profile: Profile | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
    accelerate: bool = True,
    dry_run: bool = False,
) -> IngestReport:
    """Ingest one encounters or decisions export.

    Args:
        conn: an open psycopg connection to the ledger database (not in a transaction).
        path: the CSV file.
        pseudonymise: turns patient identifiers into pseudonyms.
        profile: column mapping, separator and encoding of the export (canonical by default).
        on_progress: called with (rows read, data lines in the file) every chunk.
        now: the recorded time of the batch (defaults to the current time).
        accelerate: use the fast path (``columnar``) where the file allows it; the events are
            the same either way (False is for tests and comparisons).
        dry_run: run the same transaction and roll it back: the report says what would be
            written and nothing is (no event, chain link, key fingerprint, vacuum or sequence
            move). It still takes the insert lock while it runs.

    Returns:
        An ``IngestReport``. Raises ``InputFileError`` when the whole file cannot be read,
        ``KeyMismatchError`` (before any write) when the ledger was first used with another
        key (``ledger.keycheck``), ``BatchInterruptedError`` when the database fails during the
        batch (the connection is then unusable if it was lost).
    """
    profile = profile or Profile.canonical()
    scan = reader.scan(path, profile.encoding)
    csv_rows = reader.read_rows(scan, profile.separator)
    header = [profile.rename(h) for h in csv_rows.header]
    kind = detect_kind(header)
    name = path.name
    if kind == "unknown":
        raise InputFileError(Problem(str(path), 1, None,
                                     "not an encounters or decisions export: no performed_at or "
                                     "decided_at column in the header"))
    required = ENCOUNTER_REQUIRED if kind == "encounters" else DECISION_REQUIRED
    missing = [c for c in required if c not in header]
    if missing:
        raise InputFileError(Problem(str(path), 1, None, f"missing required columns: {missing}"))
    known_cols = ENCOUNTER_COLUMNS if kind == "encounters" else DECISION_COLUMNS
    batch = domain.batch_id(scan.sha256, kind)
    report = IngestReport(str(path), kind, scan.sha256, batch, scan.encoding, dry_run=dry_run)
    recorded_at = now or datetime.now(tz=PARIS)
    job = _Job(conn, report, recorded_at, scan.sha256, name, batch)
    committing = False
    try:
        if kind == "decisions" and not dry_run:  # its lookups are index-only once settled
            lookups.settle(conn, scan.lines - 1)
        with conn.transaction(force_rollback=dry_run):
            writer = EventWriter(conn)
            writer.lock()
            keycheck.check_key(conn, pseudonymise.key)  # before anything is written
            conn.execute(lookups.BY_PRIMARY_KEY)  # the batch's lookups, see ``ledger.lookups``
            batch_state = job.lookup(lookups.Ids(batch.bytes)).get(batch.bytes, _Known())
            done = batch_state.batch_completed
            if done is not None and not any(q["reason"].startswith("unknown encounter")
                                            for q in done["quarantined"]):
                # Already ingested, nothing pending: report what it gave then, bad rows included.
                report.already_ingested = True
                report.rows = done["rows"]
                report.quarantined = [
                    Problem(str(path), q["line"], q["column"], q["reason"], q["raw"])
                    for q in done["quarantined"]]
                committing = True
                return report
            writer.append(job.batch_start(batch_state, profile.name, kind))
            ctx = prepare.RowContext(kind, tuple(header), frozenset(known_cols),
                                     csv_rows.separator, pseudonymise.key)
            fast = accelerate and not scan.bad_lines and set(header) <= set(known_cols)
            chunks = job.fast_chunks(ctx, scan) if fast else job.row_chunks(ctx, csv_rows.rows)
            for prepared in _ahead(chunks):
                report.rows += len(prepared)
                job.write_chunk(writer, prepared, kind)
                if on_progress:
                    on_progress(report.rows, scan.lines - 1)
            completion = job.batch_completion(batch_state)
            if completion is not None:
                writer.append([completion])
            if not dry_run:
                writer.finish()
            report.new_events = writer.written
            if batch_state.version and report.new_events == 0:
                report.already_ingested = True
            committing = True  # from here on, a failure may come after the commit
    except psycopg.OperationalError as exc:  # connection lost, server shut down, disk full...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BatchInterruptedError(str(path), reason,
                                    uncertain=committing and not dry_run) from exc
    return report


class _Job:
    """The state of one file's ingestion (kept out of the public function for readability)."""

    def __init__(self, conn: Any, report: IngestReport, recorded_at: datetime, sha256: str,
                 name: str, batch: UUID):
        self.conn = conn
        self.report = report
        self.recorded_at = recorded_at
        self.provenance_base: dict[str, Any] = {
            "file_name": name, "file_sha256": sha256, "batch_id": batch}
        self.batch = batch
        self.timestamp = encode.iso(recorded_at)
        self.actor = domain.current_actor.get()
        self.encounter_topic = get_topic(domain.Encounter)
        marker = encode.provenance_json(line=-7, extra={}, **self.provenance_base)
        self.provenance_prefix, self.provenance_suffix = marker.split("-7", 1)
        self.head_prefix = encode.event_json({"timestamp": self.timestamp, "actor": self.actor},
                                             {})[:-1].decode("utf-8")
        # Field order follows the model (pydantic puts originator_topic before actor).
        self.created_prefix = encode.event_json(
            {"timestamp": self.timestamp, "originator_topic": self.encounter_topic,
             "actor": self.actor}, {})[:-1].decode("utf-8")

    # -- lookups -------------------------------------------------------------------------
    def lookup(self, ids: lookups.Ids, facts: bool = True) -> dict[bytes, _Known]:
        """The latest stored state of each aggregate id (reads our own uncommitted writes).

        Args:
            ids: the aggregate ids (``Chunk.ids``).
            facts: whether the stored facts are wanted (not for a decisions file, which only
                needs versions and the decisions already recorded).
        """
        return _known(self.stored(ids, facts))

    def stored(self, ids: lookups.Ids, facts: bool = True) -> list[_Stored]:
        """The stored events of the aggregate ids, each aggregate's in version order
        (``lookup``'s arguments). The ids come as their 16 bytes: far cheaper to fetch than
        ``UUID``s.

        Without the facts (a decisions file), the versions come first from the primary key
        alone (an index-only scan once the table is vacuumed): an encounter at version 1 holds
        only its ``Recorded`` event, and only the encounters with later events are read from
        the table itself.
        """
        if not ids:
            return []
        cur = lookups.cursor(self.conn)
        firsts: list[_Stored] = []
        if not facts:
            versions = cur.execute(_VERSIONS, (ids,)).fetchall()
            later = {oid for oid, version in versions if version > 1}
            firsts = [(oid, 1, T_RECORDED, None) for oid, _ in versions if oid not in later]
            if not later:
                return firsts
            ids = lookups.Ids.of(later)
        cur.execute(_EVENTS, (facts, list(FACT_TOPICS), ids))
        return firsts + cur.fetchall()

    # -- events --------------------------------------------------------------------------
    def _event(self, cls: Any, oid: UUID, version: int, **fields: Any) -> NewEvent:
        event = cls.model_construct(
            originator_id=oid, originator_version=version, timestamp=self.recorded_at,
            actor=domain.current_actor.get(), **fields,
        )
        return NewEvent(oid, version, get_topic(cls), event_state(event))

    def batch_start(self, state: _Known, profile: str, kind: str) -> Iterator[NewEvent]:
        if state.version == 0:
            yield self._event(
                domain.ImportBatch.Started, self.batch, 1,
                originator_topic=get_topic(domain.ImportBatch), effective_at=self.recorded_at,
                file_name=self.provenance_base["file_name"],
                file_sha256=self.provenance_base["file_sha256"], kind=kind, profile=profile,
            )
            state.version = 1

    def batch_completion(self, state: _Known) -> NewEvent | None:
        r = self.report
        changed = r.recorded + r.corrected + r.voided + r.decided
        if state.version > 1 and changed == 0:
            return None
        quarantined = tuple(
            domain.QuarantinedRow(line=p.line, column=p.column, reason=p.reason, raw=p.raw)
            for p in r.quarantined
        )
        return self._event(
            domain.ImportBatch.Completed, self.batch, state.version + 1,
            effective_at=self.recorded_at, rows=r.rows, new_events=changed,
            unchanged=r.unchanged, quarantined=quarantined,
        )

    # -- rows ----------------------------------------------------------------------------
    def row_chunks(self, ctx: prepare.RowContext, rows: Iterator[reader.Record]
                   ) -> Iterator[Chunk]:
        """Rows prepared one by one (any file), a chunk at a time."""
        for chunk in _chunks(rows, LOOKUP_CHUNK):
            yield Chunk.of(list(prepare.prepare(ctx, chunk)))

    def fast_chunks(self, ctx: prepare.RowContext, scan: reader.FileScan
                    ) -> Iterator[Chunk]:
        """Blocks of rows prepared by the fast path (``columnar``), for files that decode whole.

        A block with a quote character (a quoted field may hold a separator or a line break)
        goes through the CSV reader and the row-by-row preparer instead.
        """
        preparer = columnar.BlockPreparer(
            ctx, self.created_prefix, self.head_prefix,
            (self.provenance_prefix, self.provenance_suffix))
        try:
            for block in reader.blocks(scan, separator=ctx.separator):
                if '"' in block.text:
                    records = reader.records(block.text, block.first_line, ctx.separator)
                    yield Chunk.of(list(prepare.prepare(ctx, records)))
                    continue
                prepared = preparer(block.text, block.first_line)
                yield (Chunk([], framed=prepared)
                       if isinstance(prepared, columnar.Framed) else Chunk.of(prepared))
        finally:
            preparer.close()

    def _quarantine(self, line: int, column: str | None, reason: str, raw: str | None) -> None:
        self.report.quarantined.append(Problem(self.report.file, line, column, reason, raw))

    def _quarantine_unknown(self, line: int, ref: str) -> None:
        """A decision of an encounter the ledger does not hold (yet)."""
        self._quarantine(line, "encounter_ref", f"unknown encounter {ref} (re-ingest this file "
                         "once the encounter is in the ledger)", None)

    def _quarantine_row(self, row: prepare.Bad) -> None:
        for column, reason in row.problems:
            self._quarantine(row.line, column, reason, row.raw)

    def write_chunk(self, writer: EventWriter, chunk: Chunk, kind: str) -> None:
        """Write the events of a chunk of prepared rows, in line order (one lookup a chunk, but
        for a framed block of encounters, see ``_append_new``)."""
        encounters = kind == "encounters"
        framed = chunk.framed
        if encounters and framed is not None and self._append_new(writer, framed):
            return
        stored = self.stored(chunk.ids, facts=encounters)
        rows = chunk.rows
        if framed is not None:
            if not encounters:
                self._append_framed_decisions(writer, framed, stored)
                return
            rows = list[Prepared](framed.prepared())
        writer.append(self.chunk_events(rows, _known(stored), encounters))

    def _append_new(self, writer: EventWriter, framed: columnar.Framed) -> bool:
        """Append a framed block of encounters as new ones, as DuckDB framed it; False, with
        nothing written, if one of them is stored already.

        No lookup first: every stored encounter has its ``Recorded`` event at version 1, so the
        events table's primary key refuses the block if one is known (this batch's earlier
        blocks included), and the block, written in a savepoint, leaves nothing. The lookup
        would probe the same index for every row of the block (~2 µs a row on the server, on
        the writer's path); a block of known encounters pays one refused COPY instead.
        """
        try:
            with self.conn.transaction():
                rows, complete = framed.incomplete()
                recorded = writer.append_framed(rows, framed.ends, T_RECORDED, 1, complete)
        except psycopg.errors.UniqueViolation:
            return False
        self.report.recorded += recorded
        for bad in framed.bad:
            self._quarantine_row(bad)
        return True

    def _append_framed_decisions(self, writer: EventWriter, framed: columnar.Framed,
                                 stored: list[_Stored]) -> None:
        """Append a framed block of decisions, each at the version after its encounter's last.

        A row whose encounter is unknown is quarantined and one whose decision is already
        recorded is unchanged, both left out of the rows written, as the row-by-row path
        decides them (the block's ids are distinct: no row depends on another).
        """
        if framed.shas is None or framed.refs is None:
            raise ValueError("a framed decisions block comes with its SHA-256 and refs")
        # What ``_known`` would say of each id, versions and decisions only, without one object
        # per id (skipping them, with ids fetched as bytes, took the lookup of 1 M decisions from
        # 7.8-8.8 s to 5.9-6.0 s).
        latest: dict[bytes, int] = {}
        decided: dict[bytes, set[str]] = {}  # the recorded decisions' SHA-256, by encounter
        for oid, version, topic, state in stored:
            latest[oid] = version  # the last version wins
            if topic == T_DECIDED and state is not None:
                decided.setdefault(oid, set()).add(orjson.loads(state)["decision_sha256"])
        ids = framed.ids.each()
        versions = np.array([latest.get(oid, 0) for oid in ids], dtype=np.int64)
        known = versions > 0
        keep = known.copy()
        if decided:
            shas = framed.shas.tolist()
            for i, oid in enumerate(ids):
                if shas[i] in decided.get(oid, ()):
                    keep[i] = False
        self.report.unchanged += int(known.sum() - keep.sum())
        if keep.all():
            rows, ends = framed.rows, framed.ends
        else:
            rows, ends = store.framed_subset(framed.rows, framed.ends, keep)
        self.report.decided += writer.append_framed(rows, ends, T_DECIDED, versions[keep] + 1)
        # The quarantine in line order, as the row-by-row path fills it.
        missing = np.flatnonzero(~known)
        unknown = list(zip(framed.lines[missing].tolist(), framed.refs[missing].tolist(),
                           strict=True))
        for item in heapq.merge(unknown, framed.bad,
                                key=lambda r: r.line if isinstance(r, prepare.Bad) else r[0]):
            if isinstance(item, prepare.Bad):  # a NamedTuple: a tuple too, so tested first
                self._quarantine_row(item)
            else:
                self._quarantine_unknown(*item)

    def chunk_events(self, rows: list[Prepared], known: dict[bytes, _Known], encounters: bool
                     ) -> Iterator[NewEvent]:
        """The events of prepared rows, in line order, given what the ledger knows of them."""
        # Encounters recorded by this chunk, by id: just their state (a _Known is made only if
        # the encounter comes again in the chunk).
        fresh: dict[bytes, bytes] = {}

        def state_of(oid: bytes) -> _Known:
            state = known.get(oid)
            if state is None:
                recorded = fresh.pop(oid, None)
                state = known[oid] = _Known() if recorded is None else _Known(
                    1, fact_state=recorded)
            return state

        for r in rows:
            if isinstance(r, columnar.Taken):
                if encounters and r.oid not in known and r.oid not in fresh:
                    # The common case, whole from the fast path: a new encounter.
                    fresh[r.oid] = r.state
                    self.report.recorded += 1
                    yield NewEvent(r.oid, 1, T_RECORDED, r.state, r.state_sha)
                    continue
                if not encounters:
                    state = known.get(r.oid)
                    if state is not None and state.version and r.sha not in state.decision_hashes:
                        state.decision_hashes.add(r.sha or "")
                        state.version += 1
                        self.report.decided += 1
                        yield NewEvent(r.oid, state.version, T_DECIDED, r.state, r.state_sha)
                        continue
                good = r.good()  # the rare cases: a correction, a repeat, an unknown encounter
            elif isinstance(r, prepare.Bad):
                self._quarantine_row(r)
                continue
            else:
                good = r
            provenance = (self.provenance_prefix + str(good.line) + self.provenance_suffix
                          if not good.extra else
                          encode.provenance_json(line=good.line, extra=good.extra,
                                                 **self.provenance_base))
            if encounters:
                yield from self._encounter_events(state_of(good.oid.bytes), good, provenance)
            else:
                yield from self._decision_events(state_of(good.oid.bytes), good, provenance)

    @staticmethod
    def _state(prefix: str, effective_at: str, fields: dict[str, str]) -> bytes:
        """An event's JSON: constant head, effective time, then fields already in JSON."""
        body = "".join(f',"{k}":{v}' for k, v in fields.items())
        return f'{prefix},"effective_at":"{effective_at}"{body}}}'.encode()

    def _encounter_events(self, state: _Known, r: prepare.Good, provenance: str
                          ) -> Iterator[NewEvent]:
        if r.void:
            if state.version == 0:
                self._quarantine(r.line, "encounter_ref",
                                 f"void of an unknown encounter {r.ref}", None)
            elif state.voided:
                self.report.unchanged += 1
            else:
                state.version += 1
                state.voided = True
                self.report.voided += 1
                yield self._event(domain.Encounter.Voided, r.oid, state.version,
                                  effective_at=datetime.fromisoformat(r.effective_at),
                                  reason="voided at source",
                                  provenance=domain.Provenance.model_validate_json(provenance))
            return
        fields = {"facts": r.payload, "facts_sha256": f'"{r.sha}"'}
        if state.version == 0:
            state.version = 1
            state.set_facts(r.payload, r.sha)
            self.report.recorded += 1
            yield NewEvent(r.oid, 1, T_RECORDED, self._state(
                self.created_prefix, r.effective_at, {**fields, "provenance": provenance}))
            return
        if state.facts_sha256() == r.sha and not state.voided:
            self.report.unchanged += 1
            return
        new_facts = orjson.loads(r.payload)
        old_facts = state.old_facts()
        changed = sorted(k for k in new_facts if old_facts.get(k) != new_facts[k]) or ["status"]
        state.version += 1
        state.set_facts(r.payload, r.sha)
        state.voided = False
        self.report.corrected += 1
        yield NewEvent(r.oid, state.version, T_CORRECTED, self._state(
            self.head_prefix, r.effective_at,
            {**fields, "changed": json.dumps(changed), "provenance": provenance}))

    def _decision_events(self, state: _Known, r: prepare.Good, provenance: str
                         ) -> Iterator[NewEvent]:
        if state.version == 0:
            self._quarantine_unknown(r.line, r.ref)
            return
        if r.sha in state.decision_hashes:
            self.report.unchanged += 1
            return
        state.decision_hashes.add(r.sha)
        state.version += 1
        self.report.decided += 1
        yield NewEvent(r.oid, state.version, T_DECIDED, self._state(
            self.head_prefix, r.effective_at,
            {"decision": r.payload, "decision_sha256": f'"{r.sha}"', "provenance": provenance}))


def _known(stored: list[_Stored]) -> dict[bytes, _Known]:
    """The latest state of each aggregate from its stored events (``_Job.stored``)."""
    found: dict[bytes, _Known] = {}
    for oid, version, topic, state in stored:
        k = found.get(oid)
        if k is None:
            k = found[oid] = _Known()
        k.version = version
        if topic in FACT_TOPICS:
            k.fact_state, k.facts_text, k.facts_sha = state, None, None
            k.voided = False
        elif topic == T_VOIDED:
            k.voided = True
        elif state is None:  # a lookup leaves out only facts' states
            continue
        elif topic == T_DECIDED:
            k.decision_hashes.add(orjson.loads(state)["decision_sha256"])
        elif topic == T_COMPLETED:
            k.batch_completed = orjson.loads(state)
    return found


def _ahead(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """The chunks, the next one prepared in a background thread while the caller writes.

    The fast path's DuckDB work runs without the GIL, so preparing block n+1 overlaps writing
    block n to PostgreSQL. One chunk ahead at most: block n+2 is not begun before the caller
    takes n+1, so memory holds the block being written and the one being prepared.
    """
    done = object()
    queue: Queue[Any] = Queue(maxsize=1)
    taken = threading.Event()
    stop = threading.Event()

    def offer(item: Any) -> bool:
        """Hand ``item`` over and wait until the caller takes it; False if the caller has
        stopped listening."""
        taken.clear()
        queue.put(item)  # there is room: the item before was taken
        while not stop.is_set():
            if taken.wait(0.1):
                return True
        return False

    def work() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
            offer(done)
        except BaseException as exc:  # handed to the caller's thread
            offer(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # the fast path's DuckDB connection, in the thread that used it

    thread = threading.Thread(target=work, name="ingest-prepare", daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            taken.set()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _chunks(rows: Iterator[reader.Record], size: int) -> Iterator[list[reader.Record]]:
    chunk: list[reader.Record] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
