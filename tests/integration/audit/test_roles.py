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
from ledger.chain import next_link
from ledger.errors import UnsealedEventsError
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ledger.seal import Sealer
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



def test_what_the_app_role_inserts_by_hand_is_neither_sealed_nor_adopted_silently(
        roles: tuple[Connection, Connection], pseudo: Pseudonymiser, tmp_path: Path) -> None:
    # The application's own role may INSERT: a copy of a real event under another aggregate
    # id, its chain link by the public formula, and a seal it cannot make without the key.
    app, _ = roles
    sealer = Sealer(pseudo.key)
    with app.connect() as c:
        ingest_file(c, encounters_csv(tmp_path / "e.csv", [encounter("E-1")]), pseudo)
        c.execute(f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
                  f"SELECT gen_random_uuid(), 1, topic, state FROM {EVENTS_TABLE} "
                  "WHERE topic LIKE '%Encounter.Recorded'")
        head, link = c.execute("SELECT notification_id, link FROM claims_chain "
                               "ORDER BY notification_id DESC LIMIT 1").fetchone()
        nid, oid, version, topic, state = c.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {EVENTS_TABLE} WHERE notification_id > %s", (head,)).fetchone()
        c.execute("INSERT INTO claims_chain (notification_id, link) VALUES (%s, %s)",
                  (nid, next_link(bytes(link), nid, oid, version, topic, bytes(state))))
        report = verify_chain(c, sealer=sealer)
        assert report.ok and report.unsealed == 1 and report.unchained == 0
        with pytest.raises(UnsealedEventsError, match="chained but not sealed"):
            ingest_file(c, encounters_csv(tmp_path / "f.csv", [encounter("E-2")]), pseudo)
        c.execute("INSERT INTO claims_chain_seals (notification_id, seal) VALUES (%s, %s)",
                  (nid, Sealer(b"a guess").seal(nid, bytes(32))))
        report = verify_chain(c, sealer=sealer)
        assert report.first_break is not None and report.first_break.kind == "seal mismatch"
        with pytest.raises(UnsealedEventsError, match="does not hold"):
            ingest_file(c, encounters_csv(tmp_path / "f.csv", [encounter("E-2")]), pseudo)
