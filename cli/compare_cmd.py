"""``claims compare`` and ``claims replay``: payouts under rule sets, as known at any moment."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import render
from cli.context import open_database, settings_from_env
from ledger.errors import LedgerError
from ledger.ingest.values import parse_date, parse_datetime
from projections.compare import CompareResult, compare
from projections.snapshot import snapshot


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


class GroupKey(StrEnum):
    association = "association"
    month = "month"
    code = "code"


def _as_of(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        exact = datetime.fromisoformat(value)
        if exact.tzinfo is not None:
            return exact
    except ValueError:
        pass
    try:
        return parse_datetime(value if " " in value or "T" in value else value + " 00:00")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def load_rules(name: str) -> Any:
    """A rule set by name, or exit 2 naming the problems."""
    from projections.rules.loader import RuleSetError, load_rule_set

    try:
        return load_rule_set(name)
    except RuleSetError as exc:
        for e in exc.errors:
            render.err(f"{e.file}:{e.line}: {e.message}")
        raise typer.Exit(2) from None
    except (FileNotFoundError, KeyError, ValueError) as exc:
        render.err(f"error: unknown rule set {name!r} ({exc}); see `claims rules list`")
        raise typer.Exit(2) from None


def run_compare(base_name: str, alt_name: str, by: tuple[str, ...], date_from: date | None,
                date_to: date | None, as_of: datetime | None) -> CompareResult:
    settings = settings_from_env()
    base, alt = load_rules(base_name), load_rules(alt_name)
    conn_info = open_database(settings)
    with conn_info.connect() as conn:
        from projections.publish import publish_rule_sets

        publish_rule_sets(conn, [base, alt])
        parquet = snapshot(conn, settings.home / "cache", as_of)
    return compare(parquet, base, alt, by, date_from=date_from, date_to=date_to, as_of=as_of)


def show(result: CompareResult, fmt: Format) -> None:
    if fmt is Format.json:
        render.emit_json(result.as_json())
        return
    headers = [*result.by, "encounters", f"{result.base} €", f"{result.alt} €", "difference €"]
    rows = [[*(r[k] for k in result.by), r["encounters"], r["base_total"], r["alt_total"],
             r["difference"]] for r in result.rows]
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, delimiter=";")
        writer.writerow([*result.by, "encounters", "base_total", "alt_total", "difference"])
        writer.writerows([[*row[:-3], *(f"{v:.2f}" for v in row[-3:])] for row in rows])
        return
    t = result.totals
    rows.append(["TOTAL", *[""] * (len(result.by) - 1), t["encounters"], t["base_total"],
                 t["alt_total"], t["difference"]] if result.by else
                [t["encounters"], t["base_total"], t["alt_total"], t["difference"]])
    typer.echo(render.table(headers, rows))


def compare_cmd(
    base: Annotated[str, typer.Argument(help="Base rule set, e.g. historical.")],
    alt: Annotated[str, typer.Argument(help="Alternative rule set, e.g. parity.")],
    by: Annotated[list[GroupKey] | None, typer.Option(
        "--by", help="Group by association, month and/or code (repeatable).")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First act day (YYYY-MM-DD).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last act day, inclusive.")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Use the facts as the ledger knew them at this time (a date, a Paris "
        "time, or an ISO time with offset).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv, json, or parquet "
                                                         "(with --out).")] = Format.table,
    out: Annotated[Path | None, typer.Option(help="File for --format parquet.")] = None,
    chart: Annotated[Path | None, typer.Option(help="Also draw a PNG chart of the difference "
                                                    "per association and month.")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write a self-contained HTML report "
                                                   "(chart and table).")] = None,
) -> None:
    """Payout under BASE and ALT and the difference ALT − BASE (e.g. the cost of the SNP exclusion).

    Example: claims compare historical parity --by association --by month --format json
    """
    from projections import report

    if fmt is Format.parquet and out is None:
        raise typer.BadParameter("--format parquet needs --out FILE")
    keys = tuple(k.value for k in (by or [GroupKey.association]))
    try:
        result = run_compare(base, alt, keys, _day(date_from), _day(date_to), _as_of(as_of))
        monthly = result if set(keys) == {"association", "month"} else run_compare(
            base, alt, ("association", "month"), _day(date_from), _day(date_to), _as_of(as_of)
        ) if chart or html else None
    except LedgerError as exc:
        render.err(f"error: {exc}")
        raise typer.Exit(1) from None
    if monthly is not None and (chart or html):
        png = report.write_chart(monthly, chart or Path(str(html) + ".png"))
        if html:
            report.write_html(monthly, png, html)
            if chart is None:
                png.unlink()
    if fmt is Format.parquet:
        assert out is not None
        report.write_parquet(result, out)
        render.err(f"wrote {out}")
        return
    show(result, fmt)


def replay_cmd(
    rules: Annotated[str, typer.Option("--rules", help="Rule set to replay.")],
    by: Annotated[list[GroupKey] | None, typer.Option("--by", help="Grouping keys.")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Use the facts as the ledger knew them at this time.")] = None,
    date_from: Annotated[str | None, typer.Option("--from")] = None,
    date_to: Annotated[str | None, typer.Option("--to")] = None,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Payouts under one rule set over the facts as known at a moment."""
    keys = tuple(k.value for k in (by or [GroupKey.association]))
    result = run_compare(rules, rules, keys, _day(date_from), _day(date_to), _as_of(as_of))
    if fmt is Format.json:
        payload = result.as_json()
        payload = {"rules": rules, "as_of": payload["as_of"], "by": payload["by"],
                   "rows": [{k: v for k, v in r.items() if k not in ("alt_total", "difference")}
                            | {"total": r["base_total"]} for r in payload["rows"]],
                   "totals": {"encounters": payload["totals"]["encounters"],
                              "total": payload["totals"]["base_total"]}}
        for r in payload["rows"]:
            r.pop("base_total", None)
        render.emit_json(payload)
        return
    headers = [*result.by, "encounters", f"{rules} €"]
    rows = [[*(r[k] for k in result.by), r["encounters"], r["base_total"]] for r in result.rows]
    typer.echo(render.table(headers, rows))
