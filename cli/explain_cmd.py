"""``claims explain``: why one encounter is paid what it is under a rule set."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import render
from cli.compare_cmd import load_rules
from cli.context import open_database, settings_from_env
from projections import facts_table
from projections.queries import doctor_week_facts, find_encounter


def explain_cmd(
    ref: Annotated[str, typer.Argument(help="Encounter reference (E-2023-0000123), or "
                                            "ASSOCIATION/REF (SOS-75/E-2023-0000247) when "
                                            "references repeat.")],
    rules: Annotated[list[str], typer.Option("--rules", help="Rule set(s) to explain under.")],
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Explain one encounter: rules fired, parameter values, dates, references, amount.

    The SNP weekly cap depends on the doctor's other encounters of the week: they are read too.
    """
    rule_sets = {name: load_rules(name) for name in rules}  # a wrong name is said first
    settings = settings_from_env()
    conn_info = open_database(settings)
    from projections.rules.interpreter import explain_many

    with conn_info.connect() as conn:
        facts_table.catch_up(conn)
        matches = find_encounter(conn, ref)
        if not matches:
            render.err(f"error: no encounter {ref!r} in the ledger")
            raise typer.Exit(1)
        if len(matches) > 1:
            render.err(f"error: {ref!r} is ambiguous: " +
                       ", ".join(f"{m.association}/{m.encounter_ref}" for m in matches))
            raise typer.Exit(2)
        target = matches[0]
        week = doctor_week_facts(conn, target)
    out: dict[str, Any] = {"encounter": f"{target.association}/{target.encounter_ref}",
                           "rule_sets": {}}
    for name, rs in rule_sets.items():
        explanation = explain_many(rs, week)[target.encounter_id]
        out["rule_sets"][name] = explanation_json(rs, explanation)
    if json_output:
        render.emit_json(out)
        return
    typer.echo(f"Encounter {out['encounter']}  ({target.act}, {target.regulation_origin}, "
               f"performed {target.performed_local:%Y-%m-%d %H:%M} Paris)")
    for name, e in out["rule_sets"].items():
        typer.echo(f"\n[{name}]  total {e['amount']} €   (rule set sha256 {e['content_hash'][:16]}…)")
        for line in e["lines"]:
            typer.echo(f"  + {line['code']:<5} {line['amount']:>8} €  {line.get('why', '')}")
            if line.get("reference"):
                typer.echo(f"          {line['reference']}")
        for skipped in e["not_applied"]:
            typer.echo(f"  - {skipped}")


def explanation_json(rule_set: Any, explanation: Any) -> dict[str, Any]:
    from projections.rules.interpreter import explanation_as_json

    data: dict[str, Any] = explanation_as_json(explanation)
    data["content_hash"] = rule_set.content_hash
    return data
