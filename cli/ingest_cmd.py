"""``claims ingest``: load billing exports into the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli import render
from cli.context import open_database, settings_from_env
from ledger.errors import InputFileError, LedgerError, Problem
from ledger.ingest.pipeline import IngestReport, ingest_file
from ledger.ingest.profiles import load_profile
from ledger.pseudonym import Pseudonymiser
from projections import facts_table


def ingest(
    files: Annotated[list[Path], typer.Argument(help="Encounters or decisions CSV exports "
                                                     "(kind detected from the header).")],
    profile: Annotated[str, typer.Option(help="'canonical' or a mapping-profile YAML file "
                                              "for another software's layout.")] = "canonical",
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Ingest exports: each file is one all-or-nothing batch; re-running is a no-op.

    Bad rows are quarantined (file:line, column, reason, the row with the patient id
    pseudonymised) and the exit code is 1; good rows are ingested. Needs CLAIMS_PSEUDONYM_KEY.
    Encounters files should be ingested before the decisions that refer to them.
    """
    settings = settings_from_env()
    try:
        pseudonymise = Pseudonymiser(settings.require_pseudonym_key())
        conn_info = open_database(settings)
        reports, failures = ingest_paths(conn_info, files, pseudonymise,
                                         profile_spec=profile, show_progress=not json_output)
    except LedgerError as exc:
        render.err(f"error: {exc}")
        raise typer.Exit(2 if "CLAIMS_PSEUDONYM_KEY" in str(exc) else 1) from None
    if json_output:
        render.emit_json({"files": [r.as_json() for r in reports],
                          "errors": [f.as_json() for f in failures]})
    else:
        for r in reports:
            typer.echo(summary_line(r))
            render.problems(r.quarantined)
        render.problems(failures)
    if failures or any(r.quarantined for r in reports):
        raise typer.Exit(1)


def summary_line(r: IngestReport) -> str:
    state = "already ingested, " if r.already_ingested else ""
    return (f"{r.file}: {r.kind}, {r.rows} rows, {state}{r.new_events} new events "
            f"({r.recorded} recorded, {r.corrected} corrected, {r.voided} voided, "
            f"{r.decided} decided, {r.unchanged} unchanged), {len(r.quarantined)} quarantined")


def ingest_paths(conn_info: object, files: list[Path], pseudonymise: Pseudonymiser, *,
                 profile_spec: str = "canonical",
                 show_progress: bool = True) -> tuple[list[IngestReport], list[Problem]]:
    """Ingest files one by one, then bring the facts projection up to date."""
    profile = load_profile(profile_spec)
    reports: list[IngestReport] = []
    failures: list[Problem] = []
    with conn_info.connect() as conn, Progress(  # type: ignore[attr-defined]
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        disable=not show_progress, transient=True,
        console=render.stderr_console(),
    ) as progress:
        for path in files:
            task = progress.add_task(path.name, total=None)

            def advance(done: int, total: int, task: Any = task) -> None:
                progress.update(task, completed=done, total=total)

            try:
                reports.append(ingest_file(conn, path, pseudonymise, profile=profile,
                                           on_progress=advance))
            except InputFileError as exc:
                failures.append(exc.problem)
            progress.remove_task(task)
        facts_table.catch_up(conn)
    return reports, failures
