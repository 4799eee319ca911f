"""Reconciliation: where the insurer paid less than a rule set says it should have.

For each encounter with a decision, the expected payout under the rule set (the compiled DuckDB
evaluator over the facts snapshot) is compared with the amount paid in the insurer's latest
decision. Underpayments are findings; encounters without a decision are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ledger.vocabulary import CENT


@dataclass(frozen=True)
class Reconciliation:
    rules: str
    findings: list[dict[str, Any]]
    by_association: list[dict[str, Any]]
    totals: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        def money(row: dict[str, Any]) -> dict[str, Any]:
            return {k: (f"{v:.2f}" if isinstance(v, Decimal) else
                        v.isoformat() if isinstance(v, date) else v) for k, v in row.items()}

        return {"rules": self.rules, "findings": [money(r) for r in self.findings],
                "by_association": [money(r) for r in self.by_association],
                "totals": money(self.totals)}


def reconcile(facts: Path, decisions: Path, rule_set: Any, *, association: str | None = None,
              date_from: date | None = None, date_to: date | None = None) -> Reconciliation:
    """Expected payout under ``rule_set`` against what the insurer paid, per encounter.

    Args:
        facts: the facts snapshot (``projections.snapshot.snapshot``).
        decisions: the decisions snapshot (``projections.snapshot.decisions_snapshot``).
        rule_set: the rule set that says what should have been paid (usually ``historical``).
        association: only this association's encounters (its code in any case).
        date_from: first act day (inclusive); date_to: last act day (inclusive).

    Returns:
        The underpaid encounters (largest shortfall first), totals per association and overall.
    """
    from projections.rules.batch import payout_totals_sql

    where, params = ["TRUE"], []
    if association:  # stored upper-cased, as the ingest reads it
        where.append("p.association = ?")
        params.append(association.strip().upper())
    if date_from:
        where.append(f"p.performed_local >= DATE '{date_from}'")
    if date_to:
        where.append(f"p.performed_local < DATE '{date_to + timedelta(days=1)}'")
    margin = f"WHERE performed_local >= DATE '{date_from - timedelta(days=7)}'" if date_from else ""
    query = f"""
        WITH facts AS (SELECT * FROM read_parquet('{facts}') {margin}),
             p AS ({payout_totals_sql(rule_set, "facts")})
        SELECT p.association, f.encounter_ref, CAST(p.performed_local AS DATE) AS act_day,
               p.amount AS expected, d.paid_amount AS paid, d.decided_at, d.rejected_codes,
               d.reason
        FROM p JOIN facts f USING (encounter_id)
        LEFT JOIN read_parquet('{decisions}') d USING (encounter_id)
        WHERE {' AND '.join(where)}"""
    with duckdb.connect() as duck:
        duck.execute("SET TimeZone = 'UTC'")
        rows = duck.execute(query, params).fetchall()
    findings: list[dict[str, Any]] = []
    per: dict[str, dict[str, Any]] = {}
    for assoc, ref, day, expected, paid, decided_at, rejected, reason in rows:
        acc = per.setdefault(assoc, {"association": assoc, "encounters": 0, "decided": 0,
                                     "expected": Decimal("0.00"), "paid": Decimal("0.00"),
                                     "underpaid": 0, "shortfall": Decimal("0.00")})
        acc["encounters"] += 1
        if paid is None:
            continue
        expected, paid = Decimal(expected).quantize(CENT), Decimal(paid).quantize(CENT)
        acc["decided"] += 1
        acc["expected"] += expected
        acc["paid"] += paid
        if paid < expected:
            acc["underpaid"] += 1
            acc["shortfall"] += expected - paid
            findings.append({"association": assoc, "encounter_ref": ref, "act_day": day,
                             "expected": expected, "paid": paid, "shortfall": expected - paid,
                             "decided_at": decided_at, "rejected_codes": rejected or "",
                             "reason": reason})
    findings.sort(key=lambda r: (-r["shortfall"], r["association"], r["encounter_ref"]))
    by_association = [per[k] for k in sorted(per)]
    totals: dict[str, Any] = {
        **{k: sum(a[k] for a in by_association) for k in ("encounters", "decided", "underpaid")},
        **{k: sum((a[k] for a in by_association), Decimal("0.00"))
           for k in ("expected", "paid", "shortfall")}}
    return Reconciliation(rule_set.name, findings, by_association, totals)
