"""``claims reconcile``: where the insurer paid less than a rule set says."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import render
from cli.compare_cmd import _as_of, _day, load_rules
from cli.context import open_database, settings_from_env
from projections.reconcile import reconcile
from projections.snapshot import decisions_snapshot, snapshot


def reconcile_cmd(
    rules: Annotated[str, typer.Option("--rules", help="What should have been paid.")]
    = "historical",
    association: Annotated[str | None, typer.Option(help="Only this association.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First act day.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last act day, inclusive.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Facts and decisions as known "
                                                              "at this time.")] = None,
    limit: Annotated[int, typer.Option(help="Findings shown in the table (JSON: all).")] = 20,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Underpayments: per encounter, the rule set's payout minus the insurer's paid amount.

    Exit code 1 when there are findings (underpaid encounters), 0 otherwise.
    """
    settings = settings_from_env()
    rule_set = load_rules(rules)
    moment = _as_of(as_of)
    conn_info = open_database(settings)
    with conn_info.connect() as conn:
        facts = snapshot(conn, settings.home / "cache", moment)
        decisions = decisions_snapshot(conn, settings.home / "cache", moment)
    result = reconcile(facts, decisions, rule_set, association=association,
                       date_from=_day(date_from), date_to=_day(date_to))
    if json_output:
        render.emit_json(result.as_json())
    else:
        typer.echo(render.table(
            ["association", "encounters", "decided", "expected €", "paid €", "underpaid",
             "shortfall €"],
            [[a["association"], a["encounters"], a["decided"], a["expected"], a["paid"],
              a["underpaid"], a["shortfall"]] for a in result.by_association]))
        if result.findings:
            typer.echo(f"\nLargest underpayments under {rules} ({len(result.findings)} in all):")
            typer.echo(render.table(
                ["association", "encounter", "act day", "expected €", "paid €", "shortfall €",
                 "rejected", "reason"],
                [[f["association"], f["encounter_ref"], f["act_day"], f["expected"], f["paid"],
                  f["shortfall"], f["rejected_codes"], f["reason"] or ""]
                 for f in result.findings[:limit]]))
    if result.findings:
        raise typer.Exit(1)
