"""The CLI when a new user gets it wrong: another key, a short key, a dry run, a dying server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

import ops.database
from cli import ingest_cmd
from cli.main import app
from ledger.application import EVENTS_TABLE
from ledger.ingest import pipeline
from ops.database import Connection
from tests.conftest import fetch_one
from tests.csvdata import encounter, encounters_csv


def events(db: Connection) -> int:
    return int(fetch_one(db, f"SELECT count(*) FROM {EVENTS_TABLE}"))


def test_a_second_key_is_refused_with_exit_2_and_nothing_written(
        cli_env: Path, db: Connection, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    known = encounters_csv(cli_env / "known.csv", [encounter(f"E-{i}") for i in range(10)])
    assert runner.invoke(app, ["ingest", str(known)]).exit_code == 0
    before = events(db)
    again = encounters_csv(cli_env / "again.csv", [encounter(f"E-{i}") for i in range(11)])
    monkeypatch.setenv("CLAIMS_PSEUDONYM_KEY", "a-second-valid-key-0123456789")
    for args in (["ingest", str(again)], ["ingest", "--dry-run", str(again)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)  # no traceback
        assert "CLAIMS_PSEUDONYM_KEY is not the key this ledger" in result.output
        assert "recorded as a correction" in result.output and "nothing was written" in result.output
        assert events(db) == before


def test_a_short_key_is_a_usage_error(cli_env: Path, runner: CliRunner,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_PSEUDONYM_KEY", "too-short")
    path = encounters_csv(cli_env / "e.csv", [encounter("E-1")])
    for args in (["ingest", str(path)], ["demo", "--encounters", "50"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)
        assert "CLAIMS_PSEUDONYM_KEY is too short" in result.output
        assert "at least 16 bytes" in result.output and "Traceback" not in result.output


def test_dry_run_reports_like_an_ingest_and_writes_nothing(
        cli_env: Path, db: Connection, runner: CliRunner) -> None:
    path = encounters_csv(cli_env / "e.csv", [encounter("E-1"), encounter("E-2")])
    dry = runner.invoke(app, ["ingest", "--dry-run", str(path)])
    assert dry.exit_code == 0, dry.output
    assert "would write 4 new events" in dry.output and "dry run: nothing was written" in dry.output
    as_json = runner.invoke(app, ["ingest", "--dry-run", "--json", str(path)])
    report = json.loads(as_json.output)
    assert report["dry_run"] and report["files"][0]["dry_run"]
    assert events(db) == 0
    assert fetch_one(db, "SELECT count(*) FROM claims_settings") == 0
    assert fetch_one(db, "SELECT count(*) FROM projection_tracking") == 0
    real = json.loads(runner.invoke(app, ["ingest", "--json", str(path)]).output)
    assert real["files"][0] == {**report["files"][0], "dry_run": False}


def _terminate(url: str, conn: Any) -> None:
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s, 10000)", (conn.info.backend_pid,))


def test_server_gone_mid_batch_says_what_happened_and_what_to_do(
        cli_env: Path, db: Connection, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    first = encounters_csv(cli_env / "first.csv", [encounter("E-1"), encounter("E-2")])
    second = encounters_csv(cli_env / "second.csv", [encounter(f"F-{i}") for i in range(30)])
    real = pipeline.ingest_file

    def dying(conn: Any, path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == second:
            kwargs["on_progress"] = lambda done, total: _terminate(db.url, conn)
        return real(conn, path, *args, **kwargs)

    monkeypatch.setattr(ingest_cmd, "ingest_file", dying)
    result = runner.invoke(app, ["ingest", str(first), str(second)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    out = " ".join(result.output.split())
    assert f"the database failed while ingesting {second}" in out
    assert "terminating connection due to administrator command" in out
    assert f"Nothing of {second} was written" in out
    assert f"Completed before: {first} (stored)" in out
    assert "Run the same command again" in out
    assert events(db) == 4  # the first file's only
    monkeypatch.setattr(ingest_cmd, "ingest_file", real)
    again = runner.invoke(app, ["ingest", "--json", str(first), str(second)])
    assert again.exit_code == 0, again.output
    assert [f["already_ingested"] for f in json.loads(again.output)["files"]] == [True, False]


@pytest.mark.parametrize("args", [["init"], ["ingest", "e.csv"], ["project"],
                                  ["demo", "--encounters", "50"]])
def test_embedded_server_that_cannot_start_is_a_clean_message(
        cli_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
        args: list[str]) -> None:
    monkeypatch.delenv("CLAIMS_DATABASE_URL")
    monkeypatch.chdir(cli_env)
    encounters_csv(cli_env / "e.csv", [encounter("E-1")])
    log = cli_env / "home" / "pgdata" / "log"
    log.parent.mkdir(parents=True)
    log.write_text("LOG:  starting PostgreSQL\nFATAL:  could not write lock file "
                   "\"postmaster.pid\": No space left on device\n", encoding="utf-8")

    def failing(datadir: Path, cleanup_mode: str | None) -> Any:
        raise subprocess.CalledProcessError(1, ["pg_ctl", "start"])

    monkeypatch.setattr(ops.database, "start_server", failing)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert "the embedded PostgreSQL server did not start" in result.output
    assert "No space left on device" in result.output
    assert "run the command again" in result.output
