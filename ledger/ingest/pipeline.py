"""Ingesting one export file into the ledger: all-or-nothing, idempotent, nothing lost.

A file is one import batch, written in one transaction under the event table's insert lock: a
crash at any moment leaves either the whole batch or nothing, and running the same command again
completes it. Rows are streamed (memory does not grow with the file), prepared a block at a time
in a background thread (by the fast path, ``columnar``, where the rows allow; row by row
otherwise) and written by one of two routes (``routes``); a decisions file's lookups are read
ahead on a second connection when the caller gives one (``side_connect``). What each row gives
is decided by the domain (``ledger.decide``); a bad row is quarantined: its line, column and
reason in the batch's ``ImportBatch.Completed`` event, its text sealed outside the log
(``ledger.quarantine``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from queue import Queue
from typing import Any

import psycopg
from eventsourcing.utils import get_topic

from ledger import domain, keycheck, lookups, quarantine
from ledger.errors import BatchInterruptedError, InputFileError, Problem
from ledger.ingest import columnar, known, prepare, reader
from ledger.ingest.events import BatchEvents
from ledger.ingest.profiles import Profile
from ledger.ingest.report import IngestReport
from ledger.ingest.routes import Chunk, Routes
from ledger.ingest.rows import (
    DECISION_COLUMNS,
    DECISION_REQUIRED,
    ENCOUNTER_COLUMNS,
    ENCOUNTER_REQUIRED,
)
from ledger.pseudonym import Pseudonymiser
from ledger.seal import Sealer
from ledger.store import EventWriter, NewEvent
from ledger.vocabulary import PARIS

__all__ = ["IngestReport", "detect_kind", "ingest_file"]

#: Rows of the plain route looked up and written at a time.
LOOKUP_CHUNK = 5000


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
    side_connect: Callable[[], Any] | None = None,
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
        side_connect: opens a second connection to the same database. When given, a decisions
            file's lookups are read ahead on it, while the batch's connection writes the block
            before (``known.decisions_seen``); the events written are the same.

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
    events = BatchEvents(now or datetime.now(tz=PARIS), domain.current_actor.get(), name,
                         scan.sha256, batch)
    committing = False
    try:
        if kind == "decisions" and not dry_run:  # its lookups are index-only once settled
            lookups.settle(conn, scan.lines - 1)
        with conn.transaction(force_rollback=dry_run):
            # Another key is told as such, before its seal check would call the seals forged.
            keycheck.check_key(conn, pseudonymise.key, record=False)
            writer = EventWriter(conn, Sealer(pseudonymise.key))
            writer.lock()
            keycheck.check_key(conn, pseudonymise.key)  # before anything is written
            conn.execute(lookups.BY_PRIMARY_KEY)  # the batch's lookups, see ``ledger.lookups``
            version, done = known.batch_completed(conn, batch.bytes)
            if done is not None and not any(q["reason"].startswith("unknown encounter")
                                            for q in done["quarantined"]):
                # Already ingested, nothing pending: report what it gave then, bad rows included.
                report.already_ingested = True
                report.rows = done["rows"]
                report.quarantined = [Problem(str(path), q["line"], q["column"], q["reason"])
                                      for q in done["quarantined"]]
                committing = True
                return report
            if version == 0:
                writer.append([events.batch_event(
                    domain.ImportBatch.Started, batch, 1,
                    originator_topic=get_topic(domain.ImportBatch), file_name=name,
                    file_sha256=scan.sha256, kind=kind, profile=profile.name)])
                version = 1
            ctx = prepare.RowContext(kind, tuple(header), frozenset(known_cols),
                                     csv_rows.separator, pseudonymise.key)
            routes = Routes(conn, ctx, events, report)
            fast = accelerate and not scan.bad_lines and set(header) <= set(known_cols)
            side = side_connect if kind == "decisions" else None
            chunks = (_fast_chunks(ctx, scan, events, side) if fast
                      else _plain_chunks(ctx, csv_rows.rows))
            for chunk in _ahead(chunks):
                report.rows += len(chunk)
                routes.write(writer, chunk)
                if on_progress:
                    on_progress(report.rows, scan.lines - 1)
            if version == 1 or report.changed:
                digests = (quarantine.Sealer(conn, batch).seal(report.texts) if report.texts
                           else {})
                writer.append([_completion(events, report, batch, version + 1, digests)])
            if not dry_run:
                writer.finish()
            report.new_events = writer.written
            if version > 1 and report.new_events == 0:
                report.already_ingested = True
            committing = True  # from here on, a failure may come after the commit
    except psycopg.OperationalError as exc:  # connection lost, server shut down, disk full...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BatchInterruptedError(str(path), reason,
                                    uncertain=committing and not dry_run) from exc
    return report


def _completion(events: BatchEvents, report: IngestReport, batch: Any, version: int,
                digests: dict[int, str]) -> NewEvent:
    """The batch's ``Completed`` event: what it gave, and its quarantined rows (each with its
    sealed text's digest, ``digests``)."""
    quarantined = tuple(
        domain.QuarantinedRow(line=p.line, column=p.column, reason=p.reason, raw=None,
                              raw_digest=digests.get(p.line))
        for p in report.quarantined)
    return events.batch_event(domain.ImportBatch.Completed, batch, version, rows=report.rows,
                              new_events=report.changed, unchanged=report.unchanged,
                              quarantined=quarantined)


def _plain_chunks(ctx: prepare.RowContext, records: Iterator[reader.Record]
                  ) -> Iterator[Chunk]:
    """Records prepared one by one (any file), a chunk at a time."""
    chunk: list[reader.Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= LOOKUP_CHUNK:
            yield Chunk(prepare.prepare(ctx, chunk))
            chunk = []
    if chunk:
        yield Chunk(prepare.prepare(ctx, chunk))


def _fast_chunks(ctx: prepare.RowContext, scan: reader.FileScan, events: BatchEvents,
                 side_connect: Callable[[], Any] | None = None) -> Iterator[Chunk]:
    """Blocks of a file that decodes whole, each framed by the fast path (``columnar``) when it
    can be; a block with a quote character (a quoted field may hold a separator or a line
    break), or one the fast path cannot frame whole, is prepared row by row.

    With ``side_connect`` (decisions), a framed block's lookup is read on that connection
    (``Framed.ahead``), which sees the ledger as it was before the batch: the batch holds the
    insert lock, so nothing else is committed meanwhile. If that connection cannot be opened
    (the server's connection limit), the lookups are read on the batch's own connection.
    """
    preparer = columnar.BlockPreparer(ctx, events)
    side = None
    if side_connect is not None:
        try:
            side = side_connect()
        except psycopg.OperationalError:
            side = None
    try:
        for block in reader.blocks(scan, separator=ctx.separator):
            framed = None if '"' in block.text else preparer(block.text, block.first_line)
            if framed is not None:
                if side is not None:
                    with side.transaction():
                        side.execute(lookups.BY_PRIMARY_KEY)
                        framed.ahead = known.decisions(side, framed.ids)
                yield Chunk([], framed)
            else:
                yield Chunk(prepare.prepare(
                    ctx, reader.records(block.text, block.first_line, ctx.separator)))
    finally:
        preparer.close()
        if side is not None:
            side.close()


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
