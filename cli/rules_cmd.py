"""``claims rules``: list the packaged tariff rule sets, show one, check rule files."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from projections.rules.loader import RuleSetError, check_path, list_rule_sets, load_rule_set
from projections.rules.model import RuleSet

app = typer.Typer(help="Tariff rule sets (data files): list, show, check.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)


@app.command("list")
def list_cmd() -> None:
    """List the packaged rule sets with their descriptions."""
    for name, description in list_rule_sets():
        typer.echo(f"{name:<12} {description}")


@app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Rule set name (or folder).")],
    on: Annotated[str | None, typer.Option(help="Values in force on this day (YYYY-MM-DD); "
                                                "default: today.")] = None,
) -> None:
    """Show a rule set: parameters with their value on a day and references, rules, groups."""
    rule_set = _load(name)
    try:
        day = date.fromisoformat(on) if on else date.today()
    except ValueError:
        raise typer.BadParameter(f"{on!r} is not a date YYYY-MM-DD", param_hint="--on") from None
    _show(rule_set, day)


@app.command("check")
def check_cmd(path: Annotated[Path, typer.Argument(help="A rule-set folder, a folder of rule "
                                                        "sets, or a parameter file.")]) -> None:
    """Check rule files strictly; print ``file:line: message`` per error (exit 1 if any)."""
    errors = check_path(path)
    for e in errors:
        typer.echo(f"{e.file}:{e.line}: {e.message}", err=True)
    if errors:
        typer.echo(f"{len(errors)} error(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: {path}")


def _load(name: str) -> RuleSet:
    try:
        return load_rule_set(name)
    except RuleSetError as exc:
        for e in exc.errors:
            typer.echo(f"{e.file}:{e.line}: {e.message}", err=True)
        raise typer.Exit(1) from None
    except FileNotFoundError as exc:
        typer.echo(f"error: unknown rule set {name!r} ({exc}); see `claims rules list`", err=True)
        raise typer.Exit(2) from None


def _show(rule_set: RuleSet, day: date) -> None:
    typer.echo(f"{rule_set.name}: {rule_set.description}")
    if rule_set.base:
        typer.echo(f"overlay on {rule_set.base}; modifications:")
        for mod in rule_set.modifications:
            typer.echo(f"  - {mod}")
    typer.echo(f"content sha256 {rule_set.content_hash}")
    typer.echo(f"options: {rule_set.options}")
    typer.echo(f"\nparameters (value in force on {day}):")
    for code, p in sorted(rule_set.parameters.items()):
        entry = p.entry_at(day)
        if entry is None or entry.value is None:
            typer.echo(f"  {code:<5} {'—':>8}    {p.description} (no value on {day})")
            continue
        flag = "" if entry.confirmed else "  [UNCONFIRMED: " + (entry.note or "") + "]"
        typer.echo(f"  {code:<5} {entry.value:>8} €  since {entry.effective_from}  {p.description}")
        typer.echo(f"        {entry.reference}{flag}")
    typer.echo("\nrules:")
    for r in rule_set.rules:
        cap = f", at most {r.weekly_cap} per doctor and ISO week" if r.weekly_cap else ""
        typer.echo(f"  {r.id} → {r.code}  [{r.period_text()}]{cap}: {r.why}")
        for key, value in r.conditions:
            typer.echo(f"      {key}: {value}")
    for g in rule_set.groups:
        typer.echo(f"\ngroup {g.id} (one at most, by priority): {', '.join(g.rules)}")
