"""``claims ingest``: load billing exports into the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli import render
from cli.context import open_database, settings_from_env
from ledger.errors import (
    BatchInterruptedError,
    ConfigurationError,
    InputFileError,
    LedgerError,
    Problem,
)
from ledger.ingest.pipeline import IngestReport, ingest_file
from ledger.ingest.profiles import load_profile
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection
from projections import facts_table


def ingest(
    files: Annotated[list[Path], typer.Argument(help="Encounters or decisions CSV exports "
                                                     "(kind detected from the header).")],
    profile: Annotated[str, typer.Option(help="'canonical' or a mapping-profile YAML file "
                                              "for another software's layout.")] = "canonical",
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Report what would be written (the same report, --json too) and "
                          "write nothing.")] = False,
) -> None:
    """Ingest exports: each file is one all-or-nothing batch; re-running is a no-op.

    Bad rows are quarantined (file:line, column, reason, the row with the patient id
    pseudonymised) and the exit code is 1; good rows are ingested. Needs CLAIMS_PSEUDONYM_KEY,
    the ledger's own: the key a ledger was first used with is the only one it accepts (another
    is refused, exit 2). Encounters files should be ingested before the decisions that refer
    to them. If the database fails mid-file, that file's batch is not written: run the same
    command again.
    """
    settings = settings_from_env()
    try:
        pseudonymise = Pseudonymiser(settings.require_pseudonym_key())
        conn_info = open_database(settings)
        reports, failures = ingest_paths(conn_info, files, pseudonymise, profile_spec=profile,
                                         show_progress=not json_output, dry_run=dry_run)
    except LedgerError as exc:
        render.err(f"error: {exc}")
        raise typer.Exit(2 if isinstance(exc, ConfigurationError) else 1) from None
    if json_output:
        render.emit_json({"files": [r.as_json() for r in reports],
                          "errors": [f.as_json() for f in failures], "dry_run": dry_run})
    else:
        for r in reports:
            typer.echo(summary_line(r))
            render.problems(r.quarantined)
        render.problems(failures)
        if dry_run:
            typer.echo("dry run: nothing was written")
    if failures or any(r.quarantined for r in reports):
        raise typer.Exit(1)


def summary_line(r: IngestReport) -> str:
    state = "already ingested, " if r.already_ingested else ""
    would = "would write " if r.dry_run else ""
    return (f"{r.file}: {r.kind}, {r.rows} rows, {state}{would}{r.new_events} new events "
            f"({r.recorded} recorded, {r.corrected} corrected, {r.voided} voided, "
            f"{r.decided} decided, {r.unchanged} unchanged), {len(r.quarantined)} quarantined")


def ingest_paths(conn_info: Connection, files: list[Path], pseudonymise: Pseudonymiser, *,
                 profile_spec: str = "canonical", show_progress: bool = True,
                 dry_run: bool = False) -> tuple[list[IngestReport], list[Problem]]:
    """Ingest files one by one, then bring the facts projection up to date (not on a dry run).

    The database failing on the way ends the command here (exit 1) with what happened, what is
    stored and what to do (``database_failed``).
    """
    profile = load_profile(profile_spec)
    reports: list[IngestReport] = []
    failures: list[Problem] = []
    catching_up = False
    try:
        with conn_info.connect() as conn, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), disable=not show_progress, transient=True,
            console=render.stderr_console(),
        ) as progress:
            for path in files:
                task = progress.add_task(path.name, total=None)

                def advance(done: int, total: int, task: Any = task) -> None:
                    progress.update(task, completed=done, total=total)

                try:
                    reports.append(ingest_file(conn, path, pseudonymise, profile=profile,
                                               on_progress=advance, dry_run=dry_run,
                                               side_connect=conn_info.connect))
                except InputFileError as exc:
                    failures.append(exc.problem)
                progress.remove_task(task)
            if not dry_run:
                catching_up = True
                facts_table.catch_up(conn)
                render.projection_alarms(facts_table.alarms(conn))
    except (BatchInterruptedError, psycopg.OperationalError) as exc:
        database_failed(exc, [r.file for r in reports if not r.dry_run], catching_up)
        raise typer.Exit(1) from None
    return reports, failures


def database_failed(exc: BatchInterruptedError | psycopg.OperationalError, completed: list[str],
                    catching_up: bool) -> None:
    """Say on stderr that the database failed during an ingest (in a file's batch, connecting,
    or ``catching_up`` the projection after the batches), what of it is stored (the files
    ``completed`` before, each its own committed batch) and what to do."""
    done = (f"Completed before: {', '.join(completed)} (stored)." if completed
            else "No file was completed before.")
    again = ("Run the same command again (fix the cause first: a full disk, a stopped server): "
             "files already ingested are skipped, the others are ingested.")
    if isinstance(exc, BatchInterruptedError):
        if exc.uncertain:
            what = (f"the database failed while committing {exc.file} ({exc.reason}): it may or "
                    "may not be stored.")
        else:
            what = (f"the database failed while ingesting {exc.file} ({exc.reason}). Nothing of "
                    f"{exc.file} was written: a file is one transaction, rolled back.")
    else:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        what = (f"the database failed ({reason}) after the files' batches, while bringing the "
                "facts projection up to date; it catches up at the next command." if catching_up
                else f"cannot reach the database ({reason}). Nothing was written.")
    render.err(f"error: {what}")
    render.err(done)
    render.err(again)
