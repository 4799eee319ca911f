"""Roles on a real PostgreSQL: the application appends but never rewrites, the reader only reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest

from audit.digest import record_digest
from audit.verify import verify_chain
from ledger.application import EVENTS_TABLE
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection
from ops.roles import create_roles
from projections import facts_table
from tests.csvdata import encounter, encounters_csv

DENIED = psycopg.errors.InsufficientPrivilege


def _as(db: Connection, user: str, password: str) -> Connection:
    parts = urlparse(db.url)
    netloc = f"{user}:{password}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return Connection(parts._replace(netloc=netloc).geturl())


@pytest.fixture
def roles(conn: Any, ledger_db: Connection) -> Iterator[tuple[Connection, Connection]]:
    create_roles(conn, "app-secret-1", "reader-secret-1")
    create_roles(conn, "app-secret-1", "reader-secret-1")  # idempotent
    yield _as(ledger_db, "claims_app", "app-secret-1"), _as(ledger_db, "claims_reader",
                                                             "reader-secret-1")


def test_app_appends_and_projects_but_cannot_rewrite(
        roles: tuple[Connection, Connection], pseudo: Pseudonymiser, tmp_path: Path) -> None:
    app, _ = roles
    with app.connect() as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "claims_app"
        report = ingest_file(c, encounters_csv(tmp_path / "e.csv", [encounter("E-1")]), pseudo)
        assert report.recorded == 1
        facts_table.catch_up(c)
        assert verify_chain(c).ok
        record_digest(c, actor="app")
        for statement in (f"UPDATE {EVENTS_TABLE} SET topic = topic",
                          f"DELETE FROM {EVENTS_TABLE}", f"TRUNCATE {EVENTS_TABLE}",
                          "UPDATE claims_chain SET link = link", "DELETE FROM claims_chain",
                          "DELETE FROM claims_chain_digests",
                          f"ALTER TABLE {EVENTS_TABLE} DISABLE TRIGGER USER"):
            with pytest.raises(DENIED) as failure:
                c.execute(statement)
            message = str(failure.value)
            assert "permission denied" in message or "must be owner" in message, statement


def test_owner_is_stopped_by_the_triggers(roles: Any, conn: Any) -> None:
    conn.execute("SET ROLE claims_owner")
    for statement in (f"UPDATE {EVENTS_TABLE} SET topic = topic",
                      f"DELETE FROM {EVENTS_TABLE}", f"TRUNCATE {EVENTS_TABLE}",
                      "TRUNCATE claims_chain"):
        conn.execute(f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, "
                     "state) SELECT gen_random_uuid(), 1, 'x:Y', '\\x7b7d'::bytea")
        with pytest.raises(DENIED, match="append-only"):
            conn.execute(statement)
    conn.execute("RESET ROLE")


def test_reader_reads_and_cannot_write(roles: tuple[Connection, Connection]) -> None:
    _, reader = roles
    with reader.connect() as c:
        assert c.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0] == 0
        assert verify_chain(c).ok
        for statement in (
                f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
                "SELECT gen_random_uuid(), 1, 'x:Y', '\\x7b7d'::bytea",
                "INSERT INTO claims_chain VALUES (1, '\\x00'::bytea)",
                "INSERT INTO projection_tracking VALUES ('x', 0)",
                "DELETE FROM encounter_fact_versions", "CREATE TABLE mine (x int)"):
            with pytest.raises(DENIED):
                c.execute(statement)

