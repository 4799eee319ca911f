"""``claims synth``: write synthetic billing exports (never real people) in the canonical format."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli import render
from ledger.synth import SynthResult, generate, planned_rows

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)

HELP = (
    "Write deterministic synthetic billing exports in the canonical format.\n\n"
    "The data models the activity of SOS Médecins associations: more acts in the evening, at "
    "night, on weekends and French public holidays; SOS regulation for most acts, Centre 15 "
    "about 10 %, SAS a few % until 30 June 2023 and none after (unless an association "
    "resumed); PDSA majorations at night and on Sundays, SNP for SAS/Centre 15 daytime acts; "
    "the insurer's decisions 5–30 days later with a few rejections.\n\n"
    "Files: encounters.csv, encounters_corrections.csv (extra column status: active or void) "
    "and decisions.csv, ';'-separated UTF-8 with DD/MM/YYYY HH:MM times and comma decimals. "
    "Synthetic only: no real patient or doctor."
)


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)",
                                 param_hint=option) from None


@app.command("synth", help=HELP)
def synth(
    out: Annotated[Path, typer.Argument(
        help="Directory to write encounters.csv, encounters_corrections.csv and decisions.csv "
             "into (created if needed; existing files are replaced).")],
    associations: Annotated[int, typer.Option(
        help="Number of synthetic associations, named SOS-<département> (SOS-75, SOS-13, …); "
             "at most 96.")] = 4,
    start: Annotated[str, typer.Option(
        help="First day of activity, YYYY-MM-DD (not before 2017-05-01).")] = "2023-01-01",
    end: Annotated[str, typer.Option(help="Last day of activity, YYYY-MM-DD, inclusive.")]
    = "2023-12-31",
    encounters: Annotated[int | None, typer.Option(
        help="Total good encounters. Default: sized from the national profile "
             "(≈ 3.7 M acts a year over 64 associations; log-normal association sizes).")]
    = None,
    seed: Annotated[int, typer.Option(
        help="Random seed: the same options and seed give byte-identical files.")] = 0,
    bad_rows: Annotated[int, typer.Option(
        help="Deliberately bad rows spread through encounters.csv (bad date, unknown origin, "
             "negative amount, missing value, malformed RPPS; each kind at least once from "
             "5), and as many through each of the corrections and decisions files.")] = 0,
    corrections: Annotated[float, typer.Option(
        help="Share of encounters given a corrected version in encounters_corrections.csv.")]
    = 0.01,
    voids: Annotated[float, typer.Option(
        help="Share of encounters voided (status 'void') in encounters_corrections.csv.")]
    = 0.002,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the summary as JSON on stdout (progress stays on stderr).")]
    = False,
) -> None:
    """Write deterministic synthetic billing exports in the canonical format."""
    first, last = _day(start, "--start"), _day(end, "--end")
    try:
        total = planned_rows(associations=associations, start=first, end=last,
                             encounters=encounters, seed=seed, bad_rows=bad_rows)
        began = time.perf_counter()
        with Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True
                      ) as progress:
            task = progress.add_task("rows", total=total)
            result = generate(out, associations=associations, start=first, end=last,
                              encounters=encounters, seed=seed, bad_rows=bad_rows,
                              bad_other_rows=bad_rows,
                              corrections=corrections, voids=voids,
                              on_progress=lambda done: progress.update(task, completed=done))
        seconds = time.perf_counter() - began
    except ValueError as exc:
        render.err(f"error: {exc}")
        raise typer.Exit(2) from None
    if json_output:
        render.emit_json({**result.as_json(), "seconds": round(seconds, 3)})
    else:
        typer.echo(summary(result, seconds))


def summary(result: SynthResult, seconds: float) -> str:
    """The human summary of a run: files, counts, speed."""
    bad = sum(result.bad_rows.values())
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.bad_rows.items()))
    rate = result.rows / seconds if seconds > 0 else 0.0
    return "\n".join([
        f"{result.encounters_path}: {result.rows} rows ({result.encounters} encounters, "
        f"{bad} bad{f': {kinds}' if kinds else ''})",
        f"{result.corrections_path}: {result.corrections + result.voids} rows "
        f"({result.corrections} corrections, {result.voids} voids"
        f"{_bad(result.bad_corrections)})",
        f"{result.decisions_path}: {result.decisions} decisions ({result.rejections} with "
        f"rejected codes{_bad(result.bad_decisions)})",
        f"{len(result.associations)} associations: " + _codes(result),
        f"written in {seconds:.1f} s ({rate:,.0f} rows/s); synthetic data, no real person",
    ])


def _bad(made: dict[str, int]) -> str:
    return f", {sum(made.values())} bad" if made else ""


def _codes(result: SynthResult, shown: int = 8) -> str:
    codes = [a.code for a in result.associations]
    more = f", … (+{len(codes) - shown})" if len(codes) > shown else ""
    return ", ".join(codes[:shown]) + more
