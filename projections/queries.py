"""Read-side queries on the facts tables, returning ``projections.facts.EncounterFacts``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.vocabulary import PARIS
from projections.facts import EncounterFacts

_COLUMNS = """encounter_id::text, association, encounter_ref, regulation_origin, regulated_at,
    performed_at, act, doctor_rpps, treating_doctor, pdsa, patient_birth_year"""


def _facts(rows: list[tuple[Any, ...]]) -> list[EncounterFacts]:
    return [EncounterFacts(*row) for row in rows]


def _current(conn: Any, match: str, params: dict[str, Any], order: str = "") -> list[EncounterFacts]:
    """The current facts of the encounters whose current facts satisfy ``match`` (SQL on the
    columns of ``encounter_fact_versions``), as the ``encounter_facts`` view gives them.

    The view takes the latest version of every encounter before any filter applies (the whole
    table is read and sorted). Here the versions that match are found first (by index where
    ``match`` allows), and only those encounters' latest versions are read: a read narrowed by
    an indexed column does not read and sort the whole table (docs/decisions.md: "Read queries
    find the matching versions first").
    """
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM (SELECT DISTINCT ON (encounter_id) * "
        "FROM encounter_fact_versions WHERE encounter_id IN ("
        f"SELECT encounter_id FROM encounter_fact_versions WHERE {match}) "
        f"ORDER BY encounter_id, version DESC) latest WHERE NOT voided AND {match} {order}",
        params).fetchall()
    return _facts(rows)


def find_encounter(conn: Any, ref: str) -> list[EncounterFacts]:
    """Encounters matching ``ASSOCIATION/REF`` or ``REF`` (current facts).

    Any association code may prefix the reference (it is upper-cased, as the ingest does); a
    text with a ``/`` that names no such encounter is then looked up as a reference whole.
    """
    ref = ref.strip()
    if "/" in ref:
        assoc, enc = ref.split("/", 1)
        found = _current(conn, "association = %(assoc)s AND encounter_ref = %(ref)s",
                         {"assoc": assoc.strip().upper(), "ref": enc.strip()})
        if found:
            return found
    return _current(conn, "encounter_ref = %(ref)s", {"ref": ref})


def doctor_week_facts(conn: Any, target: EncounterFacts) -> list[EncounterFacts]:
    """The doctor's encounters in the ISO week (Paris) of the target's act, target included."""
    local = target.performed_at.astimezone(PARIS)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0,
                                                                microsecond=0)
    return _current(
        conn, "doctor_rpps = %(doctor)s AND performed_at >= %(start)s AND performed_at < %(end)s",
        {"doctor": target.doctor_rpps, "start": monday, "end": monday + timedelta(days=7)},
        "ORDER BY performed_at, encounter_ref")


def facts_between(conn: Any, association: str, date_from: Any, date_to: Any) -> list[EncounterFacts]:
    """Current facts of one association's encounters with acts in ``[date_from, date_to]``."""
    return _current(
        conn, "association = %(assoc)s AND (performed_at AT TIME ZONE 'Europe/Paris')::date "
        "BETWEEN %(start)s AND %(end)s",
        {"assoc": association, "start": date_from, "end": date_to},
        "ORDER BY performed_at, encounter_ref")


@dataclass(frozen=True)
class Extent:
    """What the ledger holds (every version of every encounter, voided ones too): how many
    encounters, when it first and last learned of one, and the span of their acts."""

    encounters: int
    first_recorded: datetime | None
    last_recorded: datetime | None
    first_act: datetime | None
    last_act: datetime | None


def extent(conn: Any, association: str | None = None) -> Extent:
    """The ledger's ``Extent``, or one association's (say why a result is empty)."""
    where = "WHERE association = %(assoc)s" if association else ""
    row = conn.execute(
        "SELECT count(DISTINCT encounter_id), min(recorded_at), max(recorded_at), "
        f"min(performed_at), max(performed_at) FROM encounter_fact_versions {where}",
        {"assoc": association}).fetchone()
    return Extent(int(row[0]), row[1], row[2], row[3], row[4])


def has_association(conn: Any, association: str) -> bool:
    """Whether the ledger ever recorded an encounter of this association (by index)."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM encounter_fact_versions "
                       "WHERE association = %(assoc)s)", {"assoc": association}).fetchone()
    return bool(row[0])


def associations(conn: Any) -> list[str]:
    """The associations the ledger knows, sorted: one index probe each (a loose index scan)."""
    rows = conn.execute("""
        WITH RECURSIVE a(association) AS (
            (SELECT association FROM encounter_fact_versions ORDER BY association LIMIT 1)
            UNION ALL
            SELECT (SELECT v.association FROM encounter_fact_versions v
                    WHERE v.association > a.association ORDER BY v.association LIMIT 1)
            FROM a WHERE a.association IS NOT NULL)
        SELECT association FROM a WHERE association IS NOT NULL""").fetchall()
    return [r[0] for r in rows]
