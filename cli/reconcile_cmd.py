"""``claims reconcile``: where the insurer paid less than a rule set says."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from cli import render
from cli.compare_cmd import check_out, empty_note, load_rules, parse_as_of, parse_period
from cli.context import open_database, settings_from_env
from cli.verified import UNVERIFIED_HELP, require_verified
from projections import facts_table
from projections.queries import associations, extent, has_association
from projections.reconcile import Reconciliation, reconcile
from projections.snapshot import decisions_snapshot, snapshot

#: The columns of ``--format csv``: one row per underpaid encounter, largest shortfall first.
CSV_COLUMNS = ("association", "encounter_ref", "act_day", "expected", "paid", "shortfall",
               "decided_at", "rejected_codes", "reason")


class ReconcileFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def reconcile_cmd(
    rules: Annotated[str, typer.Option("--rules", help="What should have been paid.")]
    = "historical",
    association: Annotated[str | None, typer.Option(help="Only this association.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First act day.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last act day, inclusive.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Facts and decisions as known "
                                                              "at this time (recorded time).")]
    = None,
    limit: Annotated[int, typer.Option(min=0, help="Findings shown in the table (CSV and "
                                                   "JSON: all).")] = 20,
    fmt: Annotated[ReconcileFormat, typer.Option(
        "--format", help="table, csv (the underpaid encounters) or json.")]
    = ReconcileFormat.table,
    json_output: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write the output to this file instead of "
                                                  "stdout.")] = None,
    unverified: Annotated[bool, typer.Option("--unverified", help=UNVERIFIED_HELP)] = False,
) -> None:
    """Underpayments: per encounter, the rule set's payout minus the insurer's paid amount.

    Exit code 1 when there are findings (underpaid encounters) or the association is unknown,
    0 otherwise.
    """
    check_out(out)
    start, end = parse_period(date_from, date_to)
    moment = parse_as_of(as_of)
    settings = settings_from_env()
    rule_set = load_rules(rules)
    code = association.strip().upper() if association else None
    conn_info = open_database(settings)
    with conn_info.connect() as conn:
        require_verified(conn, settings, unverified)
        facts_table.catch_up(conn)
        if code and not has_association(conn, code):
            known = associations(conn)
            listing = ", ".join(known[:30]) + (" …" if len(known) > 30 else "")
            render.err(f"error: no association {association!r} in the ledger "
                       f"({'it has ' + listing if known else 'it holds no encounters yet'})")
            raise typer.Exit(1)
        facts = snapshot(conn, settings.home / "cache", moment)
        decisions = decisions_snapshot(conn, settings.home / "cache", moment)
        result = reconcile(facts, decisions, rule_set, association=code, date_from=start,
                           date_to=end)
        if result.totals["encounters"] == 0:
            render.err(empty_note(extent(conn, code), moment, start, end, code))
    with render.destination(out) as stream:
        show(result, ReconcileFormat.json if json_output else fmt, limit, stream)
    if result.findings:
        raise typer.Exit(1)


def show(result: Reconciliation, fmt: ReconcileFormat, limit: int, stream: TextIO) -> None:
    if fmt is ReconcileFormat.json:
        render.emit_json(result.as_json(), stream)
        return
    if fmt is ReconcileFormat.csv:
        render.write_csv(stream, CSV_COLUMNS,
                         [[f[k] for k in CSV_COLUMNS] for f in result.findings])
        return
    print(render.table(
        ["association", "encounters", "decided", "expected €", "paid €", "underpaid",
         "shortfall €"],
        [[a["association"], a["encounters"], a["decided"], a["expected"], a["paid"],
          a["underpaid"], a["shortfall"]] for a in result.by_association]), file=stream)
    if result.findings:
        print(f"\nLargest underpayments under {result.rules} ({len(result.findings)} in all):",
              file=stream)
        print(render.table(
            ["association", "encounter", "act day", "expected €", "paid €", "shortfall €",
             "rejected", "reason"],
            [[f["association"], f["encounter_ref"], f["act_day"], f["expected"], f["paid"],
              f["shortfall"], f["rejected_codes"], f["reason"] or ""]
             for f in result.findings[:limit]]), file=stream)
