"""Crash safety and concurrency of ingestion, with real processes on a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.application import EVENTS_TABLE
from ledger.chain import GENESIS, next_link
from ledger.errors import UnchainedEventsError
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ledger.store import EventWriter
from ops.database import Connection, server_settings, start_server
from tests.conftest import _replace_db
from tests.csvdata import decisions_csv, encounter, encounters_csv
from tests.integration.conftest import KEY, SEALER


def big_file(path: Path, n: int, prefix: str = "E") -> Path:
    rows = [encounter(f"{prefix}-{i:06d}", patient_ref=f"P-{i % 997}",
                      doctor_rpps=f"1{i % 40:010d}") for i in range(n)]
    return encounters_csv(path, rows)


def ledger_state(conn: Any) -> tuple[list[tuple[Any, ...]], list[int]]:
    """(aggregate id, version, topic, facts hash) of every event, and the positions."""
    rows = conn.execute(
        f"SELECT originator_id, originator_version, topic, "
        f"convert_from(state, 'UTF8')::jsonb->>'facts_sha256', notification_id "
        f"FROM {EVENTS_TABLE} ORDER BY notification_id").fetchall()
    return sorted(r[:4] for r in rows), [r[4] for r in rows]


def chain_is_valid(conn: Any) -> bool:
    link = GENESIS
    rows = conn.execute(
        f"SELECT e.notification_id, originator_id, originator_version, topic, state, c.link "
        f"FROM {EVENTS_TABLE} e LEFT JOIN claims_chain c USING (notification_id) "
        "ORDER BY notification_id").fetchall()
    for nid, oid, ver, topic, state, stored in rows:
        link = next_link(link, nid, oid, ver, topic, bytes(state))
        if stored is None or bytes(stored) != link:
            return False
    return True


def cli_ingest(url: str, *files: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CLAIMS_DATABASE_URL": url, "CLAIMS_PSEUDONYM_KEY": KEY.decode(),
           "CLAIMS_HOME": "/tmp/claims-test-home"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "ingest", "--json",
                             *map(str, files)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def kill_then_rerun(url: str, path: Path, kill_after: float, conn: Any
                    ) -> tuple[int, list[tuple[Any, ...]]]:
    """Ingest ``path`` with the CLI, kill -9 it after ``kill_after`` s, re-run it to the end and
    check the log (no gap, no duplicate, a valid chain). Returns the event count right after
    the kill (for the caller's whole-batches check) and the events after the re-run."""
    proc = cli_ingest(url, path)
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    after_kill = len(ledger_state(conn)[0])
    rerun = cli_ingest(url, path)
    _, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err.decode()
    state, positions = ledger_state(conn)
    assert positions == list(range(1, len(positions) + 1))  # no gap
    assert len({s[:2] for s in state}) == len(state)  # no duplicate
    assert chain_is_valid(conn)
    return after_kill, state


def clean_ledger(pg_admin_url: str, name: str) -> Connection:
    """A fresh ledger database for the clean run to compare with."""
    from ledger.store import init_schema

    with Connection(pg_admin_url).connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    clean = Connection(_replace_db(pg_admin_url, name))
    init_schema(clean, clean.library_env())
    return clean


def ingested_state(conn_info: Connection, pseudo: Pseudonymiser, *paths: Path
                   ) -> list[tuple[Any, ...]]:
    with conn_info.connect() as c:
        for path in paths:
            ingest_file(c, path, pseudo)
        return ledger_state(c)[0]


@pytest.mark.parametrize("kill_after", [0.05, 0.6, 1.5, 3.0])
def test_kill_9_during_ingest_then_rerun_gives_one_clean_run(
        ledger_db: Connection, conn: Any, pseudo: Pseudonymiser, tmp_path: Path,
        kill_after: float, pg_admin_url: str) -> None:
    path = big_file(tmp_path / "big.csv", 20000)
    after_kill, state = kill_then_rerun(ledger_db.url, path, kill_after, conn)
    assert after_kill in (0, 20002), "a batch is all or nothing"
    assert len(state) == 20002
    # Exactly the events of one clean run (other database, same file).
    assert state == ingested_state(clean_ledger(pg_admin_url, "clean_run"), pseudo, path)


@pytest.mark.parametrize("kill_after", [1.0, 1.5])
def test_kill_9_during_a_decisions_ingest_then_rerun_gives_one_clean_run(
        ledger_db: Connection, conn: Any, pseudo: Pseudonymiser, tmp_path: Path,
        kill_after: float, pg_admin_url: str) -> None:
    # A decisions file's blocks look their encounters up before they are written. Here the
    # ingest commits about 2 s after the start: 1 and 1.5 s kill it while it writes.
    encounters = big_file(tmp_path / "big.csv", 20000)
    decisions = decisions_csv(tmp_path / "decisions.csv", [
        {"association": "SOS-75", "encounter_ref": f"E-{i:06d}", "decided_at": "30/09/2023",
         "paid_amount": "25,00", "paid_codes": "G"} for i in range(20000)])
    ingested_state(ledger_db, pseudo, encounters)
    after_kill, state = kill_then_rerun(ledger_db.url, decisions, kill_after, conn)
    assert after_kill in (20002, 40004), "a batch is all or nothing"
    assert len(state) == 40004
    assert state == ingested_state(clean_ledger(pg_admin_url, "clean_decisions"), pseudo,
                                   encounters, decisions)


def test_two_ingesters_at_once_no_gap_no_duplicate(ledger_db: Connection, conn: Any,
                                                   tmp_path: Path) -> None:
    a = big_file(tmp_path / "a.csv", 8000, prefix="A")
    b = big_file(tmp_path / "b.csv", 8000, prefix="B")
    procs = [cli_ingest(ledger_db.url, a), cli_ingest(ledger_db.url, b)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
    state, positions = ledger_state(conn)
    assert positions == list(range(1, 16005))
    assert len(state) == 16004 and len({s[:2] for s in state}) == 16004
    assert chain_is_valid(conn)


def test_library_save_concurrent_with_bulk_ingest_keeps_order(
        ledger_db: Connection, conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    """The library's own save and our bulk writer share one insert lock: no interleaving."""
    from ledger.application import ClaimsLedger
    from ledger.domain import RuleSet

    path = big_file(tmp_path / "a.csv", 6000)
    app = ClaimsLedger(env=ledger_db.library_env())
    errors: list[BaseException] = []

    def saves() -> None:
        try:
            for i in range(30):
                app.save(RuleSet(name=f"r{i}", content_sha256="0" * 64, content="{}",
                                 effective_at=datetime.now(tz=UTC)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=saves)
    thread.start()
    refused = False
    with ledger_db.connect() as other:
        try:
            ingest_file(other, path, pseudo)
        except UnchainedEventsError:  # library events came first: the ledger wrote nothing
            refused = True
    thread.join(timeout=120)
    app.close()
    assert not errors
    # The library's events are not chained: no write goes on until an operator adopts them.
    later = big_file(tmp_path / "b.csv", 10, prefix="Z")
    with pytest.raises(UnchainedEventsError, match="no chain link"):
        ingest_file(conn, later, pseudo)
    with conn.transaction():
        adopter = EventWriter(conn, SEALER, adopt_unchained=True)
        adopter.lock()
        adopter.finish()
    if refused:
        ingest_file(conn, path, pseudo)
    _, positions = ledger_state(conn)
    assert positions == list(range(1, 6002 + 30 + 1))
    ids = conn.execute(f"SELECT notification_id, topic FROM {EVENTS_TABLE} "
                       "ORDER BY notification_id").fetchall()
    batch = [nid for nid, topic in ids if "Encounter" in topic or "ImportBatch" in topic]
    assert batch == list(range(batch[0], batch[0] + len(batch)))  # contiguous, not interleaved
    ingest_file(conn, later, pseudo)
    assert chain_is_valid(conn)


def test_the_embedded_server_runs_with_the_ledger_settings() -> None:
    # Started as the CLI starts one, whatever server the rest of the suite uses (outside
    # pytest's folder, as in ``tests/conftest.py``: the server runs as another user).
    with tempfile.TemporaryDirectory(prefix="claims-test-settings-") as tmp:
        server = start_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            _assert_settings(server.get_uri())
        finally:
            server.cleanup()


def _assert_settings(url: str) -> None:
    with psycopg.connect(url) as conn:
        for name, value in server_settings().items():
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
            assert row is not None
            if name == "shared_buffers":
                row = conn.execute("SELECT pg_size_bytes(%s) = pg_size_bytes(%s)",
                                   (row[0], value)).fetchone()
                assert row == (True,), name
            else:
                assert row[0] == value, name
