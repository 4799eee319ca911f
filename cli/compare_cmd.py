"""``claims compare`` and ``claims replay``: payouts under rule sets, as known at any moment.

Also the options the read commands share (``--from``/``--to``, ``--as-of``, ``--out``) and what
they say when a result is empty (``reconcile`` uses them too).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from cli import render
from cli.context import open_database, sealer, settings_from_env
from cli.verified import UNVERIFIED_HELP, require_verified
from ledger.errors import LedgerError
from ledger.ingest.values import parse_date, parse_datetime
from ledger.seal import Sealer
from ledger.vocabulary import PARIS
from projections import facts_table
from projections.compare import CompareResult, compare
from projections.queries import Extent, extent
from projections.snapshot import snapshot


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


class ReplayFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


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
        raise typer.BadParameter(str(exc), param_hint="--as-of") from None


def _day(value: str | None, option: str) -> date | None:
    if not value:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def parse_period(date_from: str | None, date_to: str | None) -> tuple[date | None, date | None]:
    """``--from`` and ``--to`` as days; a period that ends before it starts is refused (exit 1)."""
    start, end = _day(date_from, "--from"), _day(date_to, "--to")
    if start and end and start > end:
        render.err(f"error: --from {start} is after --to {end}: no day is in that period")
        raise typer.Exit(1)
    return start, end


def parse_as_of(value: str | None, now: datetime | None = None) -> datetime | None:
    """``--as-of`` as an aware time; one in the future is taken, with a warning on stderr."""
    moment = _as_of(value)
    now = now or datetime.now(UTC)
    if moment is not None and moment > now:
        render.err(f"warning: --as-of {_when(moment)} is in the future: the ledger cannot know yet "
                   f"what it will learn by then, so these are the facts as known now "
                   f"({_when(now)}); the same command run later may give other figures")
    return moment


def check_out(out: Path | None, option: str = "--out") -> None:
    """Refuse an output file that cannot be written, before any work is done (exit 2)."""
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise typer.BadParameter(f"{out} is a folder or its folder does not exist",
                                 param_hint=option)


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(PARIS):%Y-%m-%d %H:%M:%S} Paris"


def empty_note(ext: Extent, as_of: datetime | None, start: date | None, end: date | None,
               association: str | None = None) -> str:
    """Why a result has no encounter, said to the user (on stderr) with what the ledger holds."""
    who = f"association {association}" if association else "the ledger"
    if ext.encounters == 0 or ext.first_recorded is None:
        return f"note: {who} holds no encounters: nothing to show (`claims ingest` exports first)"
    if as_of is not None and as_of < ext.first_recorded:
        return (f"note: nothing to show: at --as-of {_when(as_of)} {who} knew no encounter yet; "
                f"its first facts were recorded at {_when(ext.first_recorded)}. --as-of is the "
                "recorded time (when the ledger learned a fact), not the time of the acts: "
                "use --from/--to to choose act days")
    assert ext.first_act is not None and ext.last_act is not None
    first, last = ext.first_act.astimezone(PARIS).date(), ext.last_act.astimezone(PARIS).date()
    if (start and start > last) or (end and end < first):
        return (f"note: nothing to show: no act of {who} from {start or 'the start'} to "
                f"{end or 'the end'}; its acts run from {first} to {last}")
    return (f"note: nothing to show: no encounter of {who} matches these options (its acts run "
            f"from {first} to {last}; some may be voided or recorded after --as-of)")


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


def publish_rules(conn: Any, rule_sets: Sequence[Any], sealer: Sealer | None) -> None:
    """Publish the rule sets a result uses into the ledger, so that it can cite them.

    The read side computes each one's canonical content and hash; the ledger stores them (and
    needs its key for that, ``sealer``, only when one is not published yet).
    """
    from ledger.publish import RuleSetContent, publish_rule_sets

    publish_rule_sets(conn, [RuleSetContent(rs.name, rs.to_canonical_json(), rs.content_hash)
                             for rs in rule_sets], sealer)


def run_compare(base_name: str, alt_name: str, by: tuple[str, ...], date_from: date | None,
                date_to: date | None, as_of: datetime | None, unverified: bool = False
                ) -> tuple[CompareResult, str | None]:
    """The comparison, and a note saying why when it has no encounter; only from a verified
    log unless ``unverified`` (``cli.verified``)."""
    settings = settings_from_env()
    base, alt = load_rules(base_name), load_rules(alt_name)
    conn_info = open_database(settings)
    with conn_info.connect() as conn:
        require_verified(conn, settings, unverified)
        publish_rules(conn, [base, alt], sealer(settings))
        parquet = snapshot(conn, settings.home / "cache", as_of)
        result = compare(parquet, base, alt, by, date_from=date_from, date_to=date_to,
                         as_of=as_of)
        note = (empty_note(extent(conn), as_of, date_from, date_to)
                if result.totals["encounters"] == 0 else None)
        render.projection_alarms(facts_table.alarms(conn))
    return result, note


def show(result: CompareResult, fmt: Format, stream: TextIO | None = None) -> None:
    out = sys.stdout if stream is None else stream
    if fmt is Format.json:
        render.emit_json(result.as_json(), out)
        return
    headers = [*result.by, "encounters", f"{result.base} €", f"{result.alt} €", "difference €"]
    rows = [[*(r[k] for k in result.by), r["encounters"], r["base_total"], r["alt_total"],
             r["difference"]] for r in result.rows]
    if fmt is Format.csv:
        render.write_csv(out, [*result.by, "encounters", "base_total", "alt_total", "difference"],
                         rows)
        return
    t = result.totals
    rows.append(["TOTAL", *[""] * (len(result.by) - 1), t["encounters"], t["base_total"],
                 t["alt_total"], t["difference"]] if result.by else
                [t["encounters"], t["base_total"], t["alt_total"], t["difference"]])
    print(render.table(headers, rows), file=out)


def compare_cmd(
    base: Annotated[str, typer.Argument(help="Base rule set, e.g. historical.")],
    alt: Annotated[str, typer.Argument(help="Alternative rule set, e.g. parity.")],
    by: Annotated[list[GroupKey] | None, typer.Option(
        "--by", help="Group by association, month and/or code (repeatable).")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First act day (YYYY-MM-DD).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last act day, inclusive.")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Use the facts as the ledger knew them at this time (a date, a Paris "
        "time, or an ISO time with offset): the recorded time, not the acts' days.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv, json, or parquet "
                                                         "(with --out).")] = Format.table,
    out: Annotated[Path | None, typer.Option(help="Write the output to this file instead of "
                                                  "stdout (any --format; parquet needs it).")]
    = None,
    chart: Annotated[Path | None, typer.Option(help="Also draw a PNG chart of the difference "
                                                    "per association and month.")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write a self-contained HTML report "
                                                   "(chart and table).")] = None,
    unverified: Annotated[bool, typer.Option("--unverified", help=UNVERIFIED_HELP)] = False,
) -> None:
    """Payout under BASE and ALT and the difference ALT − BASE (e.g. the cost of the SNP exclusion).

    Example: claims compare historical parity --by association --by month --format json
    """
    from projections import report

    if fmt is Format.parquet and out is None:
        raise typer.BadParameter("--format parquet needs --out FILE")
    for path, option in ((out, "--out"), (chart, "--chart"), (html, "--html")):
        check_out(path, option)
    keys = tuple(k.value for k in (by or [GroupKey.association]))
    start, end = parse_period(date_from, date_to)
    moment = parse_as_of(as_of)
    try:
        result, note = run_compare(base, alt, keys, start, end, moment, unverified)
        monthly = result if set(keys) == {"association", "month"} else run_compare(
            base, alt, ("association", "month"), start, end, moment, unverified
        )[0] if chart or html else None
    except LedgerError as exc:
        render.err(f"error: {exc}")
        raise typer.Exit(1) from None
    if note:
        render.err(note)
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
    with render.destination(out) as stream:
        show(result, fmt, stream)


def replay_cmd(
    rules: Annotated[str, typer.Option("--rules", help="Rule set to replay.")],
    by: Annotated[list[GroupKey] | None, typer.Option("--by", help="Grouping keys.")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Use the facts as the ledger knew them at this time (the recorded "
        "time, not the acts' days).")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First act day.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last act day, inclusive.")] = None,
    fmt: Annotated[ReplayFormat, typer.Option("--format", help="table, csv or json.")]
    = ReplayFormat.table,
    out: Annotated[Path | None, typer.Option(help="Write the output to this file instead of "
                                                  "stdout.")] = None,
    unverified: Annotated[bool, typer.Option("--unverified", help=UNVERIFIED_HELP)] = False,
) -> None:
    """Payouts under one rule set over the facts as known at a moment."""
    check_out(out)
    keys = tuple(k.value for k in (by or [GroupKey.association]))
    start, end = parse_period(date_from, date_to)
    moment = parse_as_of(as_of)
    try:
        result, note = run_compare(rules, rules, keys, start, end, moment, unverified)
    except LedgerError as exc:
        render.err(f"error: {exc}")
        raise typer.Exit(1) from None
    if note:
        render.err(note)
    with render.destination(out) as stream:
        show_replay(result, rules, fmt, stream)


def show_replay(result: CompareResult, rules: str, fmt: ReplayFormat, stream: TextIO) -> None:
    if fmt is ReplayFormat.json:
        payload = result.as_json()
        render.emit_json({
            "rules": rules, "as_of": payload["as_of"], "by": payload["by"],
            "rows": [{k: v for k, v in r.items() if k not in ("base_total", "alt_total",
                                                              "difference")}
                     | {"total": r["base_total"]} for r in payload["rows"]],
            "totals": {"encounters": payload["totals"]["encounters"],
                       "total": payload["totals"]["base_total"]}}, stream)
        return
    rows = [[*(r[k] for k in result.by), r["encounters"], r["base_total"]] for r in result.rows]
    if fmt is ReplayFormat.csv:
        render.write_csv(stream, [*result.by, "encounters", "total"], rows)
        return
    print(render.table([*result.by, "encounters", f"{rules} €"], rows), file=stream)
