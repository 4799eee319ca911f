"""Read-side queries on the facts tables, returning ``projections.facts.EncounterFacts``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from projections.facts import PARIS, EncounterFacts

_COLUMNS = """encounter_id::text, association, encounter_ref, regulation_origin, regulated_at,
    performed_at, act, doctor_rpps, treating_doctor, pdsa, patient_birth_year"""


def _facts(rows: list[tuple[Any, ...]]) -> list[EncounterFacts]:
    return [EncounterFacts(*row) for row in rows]


def find_encounter(conn: Any, ref: str) -> list[EncounterFacts]:
    """Encounters matching ``REF`` or ``ASSOCIATION/REF`` (current facts)."""
    if "/" in ref and ref.split("/", 1)[0].upper().startswith("SOS"):
        assoc, enc = ref.split("/", 1)
        rows = conn.execute(f"SELECT {_COLUMNS} FROM encounter_facts WHERE association = %s "
                            "AND encounter_ref = %s", (assoc.upper(), enc)).fetchall()
    else:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM encounter_facts WHERE encounter_ref = %s",
                            (ref,)).fetchall()
    return _facts(rows)


def doctor_week_facts(conn: Any, target: EncounterFacts) -> list[EncounterFacts]:
    """The doctor's encounters in the ISO week (Paris) of the target's act, target included."""
    local = target.performed_at.astimezone(PARIS)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0,
                                                                microsecond=0)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM encounter_facts WHERE doctor_rpps = %s "
        "AND performed_at >= %s AND performed_at < %s ORDER BY performed_at, encounter_ref",
        (target.doctor_rpps, monday, monday + timedelta(days=7)),
    ).fetchall()
    return _facts(rows)


def facts_between(conn: Any, association: str, date_from: Any, date_to: Any) -> list[EncounterFacts]:
    """Current facts of one association's encounters with acts in ``[date_from, date_to]``."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM encounter_facts WHERE association = %s "
        "AND (performed_at AT TIME ZONE 'Europe/Paris')::date BETWEEN %s AND %s "
        "ORDER BY performed_at, encounter_ref", (association, date_from, date_to)).fetchall()
    return _facts(rows)
