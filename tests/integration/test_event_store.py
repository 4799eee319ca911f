"""What the ledger promises about its event log, on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.application import EVENTS_TABLE, ClaimsLedger
from ledger.domain import Encounter, RuleSet, encounter_id
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection
from tests.csvdata import encounter, encounters_csv


def count(conn: Any, table: str = EVENTS_TABLE) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.mark.parametrize("statement", [
    f"UPDATE {EVENTS_TABLE} SET topic = 'x'",
    f"DELETE FROM {EVENTS_TABLE}",
    f"TRUNCATE {EVENTS_TABLE}",
    "UPDATE claims_chain SET link = ''",
    "DELETE FROM claims_chain",
])
def test_event_log_is_append_only(ledger_db: Connection, conn: Any, pseudo: Pseudonymiser,
                                  tmp_path: Path, statement: str) -> None:
    ingest_file(conn, encounters_csv(tmp_path / "e.csv", [encounter("E-1")]), pseudo)
    before = count(conn)
    with ledger_db.connect() as other, pytest.raises(psycopg.errors.InsufficientPrivilege,
                                                     match="append-only"):
        other.execute(statement)
    assert count(conn) == before == 3


def test_library_readers_read_bulk_written_events(ledger_db: Connection, conn: Any,
                                                 pseudo: Pseudonymiser, tmp_path: Path) -> None:
    rows = [encounter(f"E-{i}", patient_ref=f"P-{i}") for i in range(12)]
    ingest_file(conn, encounters_csv(tmp_path / "e.csv", rows), pseudo)
    changed = [encounter("E-3", patient_ref="P-3", billed_amount="35,00", billed_codes="G+MD")]
    ingest_file(conn, encounters_csv(tmp_path / "c.csv", changed), pseudo)

    app = ClaimsLedger(env=ledger_db.library_env())
    try:
        aggregate = app.repository.get(encounter_id("SOS-75", "E-3"))
        assert isinstance(aggregate, Encounter)
        assert aggregate.version == 2
        assert str(aggregate.facts.billed_amount) == "35.00"
        assert aggregate.facts.patient_pseudonym == pseudo("P-3")
        notifications = list(app.recorder.select_notifications(start=1, limit=100))
        assert [n.id for n in app.notification_log.select(start=1, limit=10)] == list(range(1, 11))
        ids = [n.id for n in notifications]
        assert ids == list(range(1, len(ids) + 1))  # no gap
        assert len(ids) == 1 + 12 + 1 + 1 + 1 + 1  # batch 1 (14 events), batch 2 (3 events)
        assert app.recorder.max_notification_id() == len(ids)
        # The library's own save still works after bulk writes (sequence moved past our ids).
        aggregate.trigger_event(Encounter.Voided, effective_at=aggregate.facts.performed_at,
                                reason="test", provenance=_provenance())
        app.save(aggregate)
        assert app.recorder.max_notification_id() == len(ids) + 1
    finally:
        app.close()


def test_the_application_reads_only_the_env_it_is_given(
        ledger_db: Connection, conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Library settings left in the shell never send the application to another database."""
    for variable in ("CLAIMSLEDGER_POSTGRES_DBNAME", "POSTGRES_DBNAME", "POSTGRES_SCHEMA"):
        monkeypatch.setenv(variable, "elsewhere")
    app = ClaimsLedger(env=ledger_db.library_env())
    try:
        assert "POSTGRES_SCHEMA" not in app.env
        assert app.env.get("POSTGRES_DBNAME") == ledger_db.library_env()["POSTGRES_DBNAME"]
        rule_set = RuleSet(name="isolated", content_sha256="0" * 64, content="{}",
                           effective_at=datetime.now(tz=UTC))
        app.save(rule_set)
        assert app.repository.get(rule_set.id).name == "isolated"
        assert [n.originator_id for n in app.notification_log.select(start=1, limit=10)] == [
            rule_set.id]
    finally:
        app.close()
    # The event is in the test database's own table (schema public), the only one there.
    assert conn.execute(f"SELECT originator_id FROM public.{EVENTS_TABLE}").fetchall() == [
        (rule_set.id,)]
    assert conn.execute("SELECT to_regnamespace('elsewhere')").fetchone()[0] is None


def _provenance() -> Any:
    from uuid import uuid4

    from ledger.domain import Provenance

    return Provenance(file_name="t", file_sha256="0" * 64, line=1, batch_id=uuid4())


def test_no_patient_identifier_in_clear(conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    rows = [encounter("E-1", patient_ref="PATIENT-SECRET-42"),
            encounter("E-2", patient_ref="PATIENT-SECRET-43", billed_amount="-3")]
    report = ingest_file(conn, encounters_csv(tmp_path / "e.csv", rows), pseudo)
    assert len(report.quarantined) == 1
    assert "PATIENT-SECRET" not in repr(report.quarantined)
    from projections import facts_table

    facts_table.catch_up(conn)
    dump = conn.execute(
        f"SELECT string_agg(convert_from(state, 'UTF8'), '') FROM {EVENTS_TABLE}").fetchone()[0]
    facts = conn.execute("SELECT string_agg(t::text, '') FROM encounter_fact_versions t"
                         ).fetchone()[0]
    assert "PATIENT-SECRET" not in dump and "PATIENT-SECRET" not in facts
    assert pseudo("PATIENT-SECRET-42") in dump
