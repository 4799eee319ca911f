"""Helpers for the rule tests: facts built tersely, and the batch evaluator run in DuckDB."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from ledger.vocabulary import PARIS
from projections.facts import FACT_COLUMNS, EncounterFacts
from projections.rules.batch import payout_lines_sql, payout_sql
from projections.rules.conditions import elapsed_seconds
from projections.rules.model import RuleSet


def fact(encounter_id: str = "e1", *, performed: str = "2023-09-12 10:30",
         regulated: str | None = "2023-09-12 09:00", origin: str = "SAS",
         act: str = "consultation", doctor: str = "10000000001", treating: bool = False,
         pdsa: bool = False, birth_year: int | None = None, ref: str | None = None,
         association: str = "SOS-75") -> EncounterFacts:
    """An encounter with Paris wall-clock times written ``YYYY-MM-DD HH:MM[:SS]``."""
    performed_at = datetime.fromisoformat(performed).replace(tzinfo=PARIS)
    regulated_at = (None if regulated is None or origin == "NONE"
                    else datetime.fromisoformat(regulated).replace(tzinfo=PARIS))
    return EncounterFacts(encounter_id, association, ref or encounter_id, origin, regulated_at,
                          performed_at, act, doctor, treating, pdsa, birth_year)


def fact_row(f: EncounterFacts) -> tuple[Any, ...]:
    values = {"encounter_id": f.encounter_id, "association": f.association,
              "encounter_ref": f.encounter_ref, "regulation_origin": f.regulation_origin,
              "act": f.act, "doctor_rpps": f.doctor_rpps, "treating_doctor": f.treating_doctor,
              "pdsa": f.pdsa, "patient_birth_year": f.patient_birth_year,
              "performed_at": f.performed_at, "performed_local": f.performed_local,
              "delay_seconds": elapsed_seconds(f)}
    return tuple(values[c] for c in FACT_COLUMNS)


def duck_with_facts(facts: Sequence[EncounterFacts]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a ``facts`` table of exactly ``FACT_COLUMNS``."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(f"{name} {kind}" for name, kind in FACT_COLUMNS.items())
    con.execute(f"CREATE TABLE facts ({cols})")
    marks = ", ".join("?" for _ in FACT_COLUMNS)
    con.executemany(f"INSERT INTO facts VALUES ({marks})", [fact_row(f) for f in facts])
    return con


def batch_amounts(rule_set: RuleSet, facts: Sequence[EncounterFacts]) -> dict[str, Decimal]:
    """Each encounter's payout computed by the batch evaluator."""
    with duck_with_facts(facts) as con:
        return dict(con.execute(payout_sql(rule_set, "facts")).fetchall())


def batch_lines(rule_set: RuleSet, facts: Sequence[EncounterFacts]) -> dict[str, list[tuple[str, Decimal]]]:
    """Each encounter's (code, amount) lines from the batch evaluator, sorted."""
    out: dict[str, list[tuple[str, Decimal]]] = {f.encounter_id: [] for f in facts}
    with duck_with_facts(facts) as con:
        for eid, code, amount in con.execute(payout_lines_sql(rule_set, "facts")).fetchall():
            out[eid].append((code, amount))
    return {k: sorted(v) for k, v in out.items()}


def shifted(start: str, **delta: float) -> str:
    """``start`` (``YYYY-MM-DD HH:MM``) plus a timedelta, in the same format."""
    return (datetime.fromisoformat(start) + timedelta(**delta)).strftime("%Y-%m-%d %H:%M:%S")
