"""Read-side queries give exactly what the ``encounter_facts`` view gives, on a real PostgreSQL.

The queries look versions up by index before taking the latest ones; the view (latest version
of every encounter, then the filter) is the oracle, with corrections and voids in the log.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from projections import facts_table
from projections.facts import EncounterFacts
from projections.queries import (
    _COLUMNS,
    associations,
    doctor_week_facts,
    extent,
    facts_between,
    find_encounter,
    has_association,
)
from projections.snapshot import snapshot
from tests.csvdata import encounter, encounters_csv


def _view(conn: Any, where: str, params: tuple[Any, ...]) -> list[EncounterFacts]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM encounter_facts WHERE {where} "
                        "ORDER BY performed_at, encounter_ref, encounter_id", params).fetchall()
    return [EncounterFacts(*r) for r in rows]


def _ordered(facts: list[EncounterFacts]) -> list[EncounterFacts]:
    return sorted(facts, key=lambda f: (f.performed_at, f.encounter_ref, f.encounter_id))


def test_queries_match_the_view_with_corrections_and_voids(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    first = [encounter("E-1"), encounter("E-2", association="SOS-13"),
             encounter("E-3", performed_at="15/09/2023 09:00"),
             encounter("E-4", performed_at="25/09/2023 09:00"),   # the next ISO week
             encounter("E-5", doctor_rpps="20202020202"),
             encounter("E-6", performed_at="16/09/2023 08:00")]
    ingest_file(conn, encounters_csv(tmp_path / "a.csv", first), pseudo)
    later = [encounter("E-3", doctor_rpps="20202020202", performed_at="15/09/2023 09:00"),
             encounter("E-6", status="void", performed_at="16/09/2023 08:00"),
             encounter("E-1", billed_amount="40,00")]
    ingest_file(conn, encounters_csv(tmp_path / "b.csv", later), pseudo)
    facts_table.catch_up(conn)

    found = find_encounter(conn, "sos-75/E-1")
    assert [(f.association, f.encounter_ref) for f in found] == [("SOS-75", "E-1")]
    assert _ordered(find_encounter(conn, "E-2")) == _view(conn, "encounter_ref = %s", ("E-2",))
    assert find_encounter(conn, "E-6") == []                      # voided
    assert find_encounter(conn, "SOS-13/E-1") == []

    week = doctor_week_facts(conn, found[0])
    # E-3 moved to another doctor, E-6 was voided, E-4 is the next week.
    assert [f.encounter_ref for f in week] == ["E-1", "E-2"]
    assert week == _view(conn, "doctor_rpps = %s AND performed_at >= %s AND performed_at < %s",
                         ("10101010101", "2023-09-11T00:00+02:00", "2023-09-18T00:00+02:00"))

    between = facts_between(conn, "SOS-75", date(2023, 9, 14), date(2023, 9, 16))
    assert [f.encounter_ref for f in between] == ["E-1", "E-5", "E-3"]
    assert between == _view(
        conn, "association = %s AND (performed_at AT TIME ZONE 'Europe/Paris')::date "
        "BETWEEN %s AND %s", ("SOS-75", date(2023, 9, 14), date(2023, 9, 16)))


def test_any_association_may_prefix_a_reference(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    """``claims explain ASSOC/REF`` finds the encounter whatever the association's code."""
    rows = [encounter("E-1", association="ASSO-1"), encounter("E-1", association="77-NORD"),
            encounter("A/B", association="SOS-75")]
    ingest_file(conn, encounters_csv(tmp_path / "a.csv", rows), pseudo)
    facts_table.catch_up(conn)
    for ref, expected in (("ASSO-1/E-1", ("ASSO-1", "E-1")), ("77-nord/E-1", ("77-NORD", "E-1")),
                          (" SOS-75/A/B ", ("SOS-75", "A/B")), ("A/B", ("SOS-75", "A/B"))):
        assert [(f.association, f.encounter_ref) for f in find_encounter(conn, ref)] == [
            expected], ref
    assert len(find_encounter(conn, "E-1")) == 2
    assert find_encounter(conn, "ASSO-2/E-1") == []


def test_associations_and_extent(conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    assert associations(conn) == [] and extent(conn).encounters == 0
    rows = [encounter("E-1"), encounter("E-2", association="SOS-13",
                                        performed_at="20/09/2023 10:00"),
            encounter("E-3", association="SOS-13")]
    ingest_file(conn, encounters_csv(tmp_path / "a.csv", rows), pseudo)
    ingest_file(conn, encounters_csv(tmp_path / "b.csv", [
        encounter("E-3", association="SOS-13", status="void")]), pseudo)
    facts_table.catch_up(conn)
    assert associations(conn) == ["SOS-13", "SOS-75"]
    assert has_association(conn, "SOS-13") and not has_association(conn, "sos-13")
    whole, one = extent(conn), extent(conn, "SOS-75")
    assert (whole.encounters, one.encounters) == (3, 1)
    assert whole.first_act is not None and whole.last_act is not None
    assert (whole.first_act.date(), whole.last_act.date()) == (date(2023, 9, 14), date(2023, 9, 20))
    assert whole.first_recorded is not None and whole.last_recorded is not None
    assert whole.first_recorded <= whole.last_recorded


def test_the_snapshot_cache_is_keyed_by_the_chain_head(conn: Any, pseudo: Pseudonymiser,
                                                       tmp_path: Path) -> None:
    ingest_file(conn, encounters_csv(tmp_path / "e.csv", [encounter("E-1")]), pseudo)
    cache = tmp_path / "cache"
    first = snapshot(conn, cache)
    assert snapshot(conn, cache) == first  # warm: reused
    # The log rewritten under the same position (as only a superuser can): another head.
    with conn.transaction():
        conn.execute("ALTER TABLE claims_chain DISABLE TRIGGER USER")
        conn.execute("UPDATE claims_chain SET link = sha256(link) WHERE notification_id = "
                     "(SELECT max(notification_id) FROM claims_chain)")
        conn.execute("ALTER TABLE claims_chain ENABLE TRIGGER USER")
    assert facts_table.position(conn) == int(first.name.split("-")[1])
    assert snapshot(conn, cache) != first
