"""What a new user can break in an ingest: a second key, a dry run, the server going away."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest

from ledger.application import EVENTS_TABLE
from ledger.errors import BatchInterruptedError, KeyMismatchError
from ledger.ingest.pipeline import ingest_file
from ledger.keycheck import check_key, fingerprint
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection
from ops.roles import create_roles
from tests.csvdata import decisions_csv, encounter, encounters_csv
from tests.integration.conftest import KEY


def counts(conn: Any) -> tuple[int, int, int]:
    """Events, chain links and recorded key fingerprints."""
    row = conn.execute(f"SELECT (SELECT count(*) FROM {EVENTS_TABLE}), "
                       "(SELECT count(*) FROM claims_chain), "
                       "(SELECT count(*) FROM claims_settings)").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def test_dry_run_writes_nothing_and_reports_what_the_ingest_then_writes(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    first = encounters_csv(tmp_path / "a.csv", [encounter(f"E-{i}") for i in range(6)])
    dry_first = ingest_file(conn, first, pseudo, dry_run=True)
    assert counts(conn) == (0, 0, 0)  # not even the key's fingerprint
    assert dry_first.dry_run and dry_first.recorded == 6
    ingest_file(conn, first, pseudo)
    before = counts(conn)
    later = encounters_csv(tmp_path / "b.csv", [
        encounter("E-0"),                                     # unchanged
        encounter("E-1", billed_amount="40,00"),              # corrected
        encounter("E-2", status="void"),                      # voided
        encounter("E-9"),                                     # new
        encounter("E-8", performed_at="2023-02-30 10:00"),    # quarantined
    ])
    decisions = decisions_csv(tmp_path / "d.csv", [
        {"association": "SOS-75", "encounter_ref": "E-3", "decided_at": "01/10/2023",
         "paid_amount": "25,00", "paid_codes": "G"},
        {"association": "SOS-75", "encounter_ref": "E-404", "decided_at": "01/10/2023",
         "paid_amount": "25,00", "paid_codes": "G"},
    ])
    for path in (later, decisions):
        dry = ingest_file(conn, path, pseudo, dry_run=True)
        assert counts(conn) == before
        real = ingest_file(conn, path, pseudo)
        assert dry.as_json() == {**real.as_json(), "dry_run": True}
        assert dry.new_events > 0 and not real.dry_run
        before = counts(conn)
    dry_again = ingest_file(conn, later, pseudo, dry_run=True)
    assert dry_again.already_ingested and dry_again.new_events == 0


def test_the_first_key_is_the_ledgers_and_another_is_refused_before_any_write(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    path = encounters_csv(tmp_path / "a.csv", [encounter(f"E-{i}") for i in range(10)])
    ingest_file(conn, path, pseudo)
    stored = conn.execute("SELECT key_fingerprint FROM claims_settings").fetchone()[0]
    assert bytes(stored) == fingerprint(KEY) and KEY not in bytes(stored)
    before = counts(conn)
    other = Pseudonymiser(b"another-valid-key-0123456789")
    again = encounters_csv(tmp_path / "b.csv", [encounter(f"E-{i}") for i in range(12)])
    for dry_run in (False, True):
        with pytest.raises(KeyMismatchError, match="not the key"):
            ingest_file(conn, again, other, dry_run=dry_run)
    assert counts(conn) == before
    check_key(conn, KEY)  # the ledger's own key passes
    with pytest.raises(KeyMismatchError):
        check_key(conn, b"another-valid-key-0123456789", record=False)


def test_a_backend_killed_mid_batch_is_an_error_naming_the_file_and_nothing_is_stored(
        ledger_db: Connection, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    path = encounters_csv(tmp_path / "a.csv", [encounter(f"E-{i}") for i in range(20)])
    with ledger_db.connect() as victim, ledger_db.connect() as killer:
        def kill(done: int, total: int) -> None:
            killer.execute("SELECT pg_terminate_backend(%s, 10000)", (victim.info.backend_pid,))

        with pytest.raises(BatchInterruptedError) as failure:
            ingest_file(victim, path, pseudo, on_progress=kill)
        assert failure.value.file == str(path) and not failure.value.uncertain
        assert isinstance(failure.value.__cause__, psycopg.OperationalError)
        assert counts(killer) == (0, 0, 0)


def test_the_application_role_records_the_key_and_nobody_changes_it(
        ledger_db: Connection, conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    create_roles(conn, "app-secret-1", "reader-secret-1")
    parts = urlparse(ledger_db.url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    app, reader = (Connection(parts._replace(netloc=f"{user}@{host}").geturl()) for user in (
        "claims_app:app-secret-1", "claims_reader:reader-secret-1"))
    changes = ("UPDATE claims_settings SET key_fingerprint = key_fingerprint",
               "DELETE FROM claims_settings", "TRUNCATE claims_settings")
    with app.connect() as c:
        ingest_file(c, encounters_csv(tmp_path / "a.csv", [encounter("E-1")]), pseudo)
        for statement in changes:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                c.execute(statement)
    with reader.connect() as c:
        assert bytes(c.execute("SELECT key_fingerprint FROM claims_settings").fetchone()[0]) \
            == fingerprint(KEY)
    conn.execute("SET ROLE claims_owner")
    for statement in changes:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
    conn.execute("RESET ROLE")
