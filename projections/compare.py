"""Replay and compare: payouts of rule sets over the facts, grouped, with their difference.

Totals are the regulated fees each rule set grants (docs/formats.md §3), evaluated by the compiled
DuckDB query of each rule set over a facts snapshot. The weekly SNP cap depends on the doctor's
other encounters of the week, so payouts are computed with a week of margin before the period
and filtered afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ledger.vocabulary import CENT

GROUP_KEYS = ("association", "month", "code")
_KEY_SQL = {
    "association": "f.association",
    "month": "strftime(f.performed_local, '%Y-%m')",
}


@dataclass(frozen=True)
class CompareResult:
    base: str
    alt: str
    as_of: datetime | None
    by: tuple[str, ...]
    rows: list[dict[str, Any]]
    totals: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        def money(row: dict[str, Any]) -> dict[str, Any]:
            return {k: (f"{v:.2f}" if isinstance(v, Decimal) else v) for k, v in row.items()}

        return {
            "base": self.base, "alt": self.alt,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "by": list(self.by), "rows": [money(r) for r in self.rows],
            "totals": money(self.totals),
        }


def _facts_cte(parquet: Path, date_from: date | None, date_to: date | None) -> str:
    where = []
    if date_from:
        where.append(f"performed_local >= DATE '{date_from - timedelta(days=7)}'")
    if date_to:
        where.append(f"performed_local < DATE '{date_to + timedelta(days=1)}'")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT * FROM read_parquet('{parquet}'){clause}"


def _period(date_from: date | None, date_to: date | None) -> str:
    cond = ["TRUE"]
    if date_from:
        cond.append(f"f.performed_local >= DATE '{date_from}'")
    if date_to:
        cond.append(f"f.performed_local < DATE '{date_to + timedelta(days=1)}'")
    return " AND ".join(cond)


def compare(parquet: Path, base: Any, alt: Any, by: tuple[str, ...] = ("association",), *,
            date_from: date | None = None, date_to: date | None = None,
            as_of: datetime | None = None) -> CompareResult:
    """Payout per group under two rule sets and the difference ``alt - base``.

    Args:
        parquet: the facts snapshot (``projections.snapshot.snapshot``).
        base: the base rule set (``projections.rules`` ``RuleSet``).
        alt: the alternative rule set.
        by: grouping keys among ``association``, ``month``, ``code``.
        date_from: first day of the period (act date, Paris), inclusive.
        date_to: last day of the period, inclusive.
        as_of: recorded with the result (the snapshot already holds the facts as of then).

    Returns:
        A ``CompareResult`` whose JSON form is docs/formats.md §3.
    """
    unknown = [k for k in by if k not in GROUP_KEYS]
    if unknown:
        raise ValueError(f"unknown grouping keys {unknown}; use {list(GROUP_KEYS)}")
    from projections.rules.batch import payout_lines_sql

    facts = _facts_cte(parquet, date_from, date_to)
    keys = [k for k in GROUP_KEYS if k in by]
    if "code" in keys:
        select_keys = [f"{_KEY_SQL[k]} AS {k}" if k != "code" else "l.code AS code"
                       for k in keys]
        group = ", ".join(str(i + 1) for i in range(len(keys)))
        base_sql = payout_lines_sql(base, "facts")
        alt_sql = payout_lines_sql(alt, "facts")
        lines = """
            SELECT coalesce(b.encounter_id, a.encounter_id) AS encounter_id,
                   coalesce(b.code, a.code) AS code,
                   coalesce(b.amount, 0) AS base_amount, coalesce(a.amount, 0) AS alt_amount
            FROM (SELECT encounter_id, code, sum(amount) AS amount FROM base_lines GROUP BY 1, 2) b
            FULL OUTER JOIN
                 (SELECT encounter_id, code, sum(amount) AS amount FROM alt_lines GROUP BY 1, 2) a
            ON a.encounter_id = b.encounter_id AND a.code = b.code"""
        body = f"""
            SELECT {', '.join(select_keys)}, count(DISTINCT f.encounter_id) AS encounters,
                   sum(l.base_amount) AS base_total, sum(l.alt_amount) AS alt_total
            FROM ({lines}) l JOIN facts f ON f.encounter_id = l.encounter_id
            WHERE {_period(date_from, date_to)}
            GROUP BY {group} ORDER BY {group}"""
        query = f"""
        WITH facts AS ({facts}),
             base_lines AS ({base_sql}),
             alt_lines AS ({alt_sql})
        {body}"""
    else:
        query = _grouped_query(facts, base, alt, keys, date_from, date_to)
    with duckdb.connect() as duck:
        duck.execute("SET TimeZone = 'UTC'")
        cur = duck.execute(query)
        names = [d[0] for d in cur.description]
        raw = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    rows = []
    for r in raw:
        base_total = Decimal(r["base_total"] or 0).quantize(CENT)
        alt_total = Decimal(r["alt_total"] or 0).quantize(CENT)
        row = {k: r[k] for k in keys}
        row.update(encounters=int(r["encounters"]), base_total=base_total, alt_total=alt_total,
                   difference=alt_total - base_total)
        rows.append(row)
    totals = _totals(facts, base, alt, date_from, date_to) if "code" in keys else _sum_rows(rows)
    return CompareResult(base.name, alt.name, as_of, tuple(keys), rows, totals)


def _sum_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    base_total = sum((r["base_total"] for r in rows), Decimal("0.00"))
    alt_total = sum((r["alt_total"] for r in rows), Decimal("0.00"))
    return {"encounters": sum(r["encounters"] for r in rows), "base_total": base_total,
            "alt_total": alt_total, "difference": alt_total - base_total}


def _grouped_query(facts: str, base: Any, alt: Any, keys: list[str], date_from: date | None,
                   date_to: date | None) -> str:
    """Totals per group under both rule sets: one pass per rule set, no join to the facts."""
    from projections.rules.batch import payout_totals_sql

    group = ", ".join(str(i + 1) for i in range(len(keys)))

    def grouped(rule_set: Any) -> str:
        keys_sql = "".join(f"{_KEY_SQL[k]} AS {k}, " for k in keys)
        return f"""
            SELECT {keys_sql}count(*) AS encounters, coalesce(sum(f.amount), 0) AS total
            FROM ({payout_totals_sql(rule_set, "facts")}) f
            WHERE {_period(date_from, date_to)} {f"GROUP BY {group}" if keys else ""}"""

    join = f"USING ({', '.join(keys)})" if keys else "ON TRUE"
    return f"""
        WITH facts AS ({facts})
        SELECT {''.join(f'b.{k}, ' for k in keys)}b.encounters, b.total AS base_total,
               a.total AS alt_total
        FROM ({grouped(base)}) b JOIN ({grouped(alt)}) a {join}
        {'ORDER BY ' + group if keys else ''}"""


def _totals(facts: str, base: Any, alt: Any, date_from: date | None, date_to: date | None
            ) -> dict[str, Any]:
    """Totals when rows are per code: encounters are counted once, not once per code."""
    with duckdb.connect() as duck:
        duck.execute("SET TimeZone = 'UTC'")
        row = duck.execute(_grouped_query(facts, base, alt, [], date_from, date_to)).fetchone()
    assert row is not None
    base_total = Decimal(row[1]).quantize(CENT)
    alt_total = Decimal(row[2]).quantize(CENT)
    return {"encounters": int(row[0]), "base_total": base_total, "alt_total": alt_total,
            "difference": alt_total - base_total}
