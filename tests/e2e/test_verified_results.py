"""Results only from a verified log: compare, replay and reconcile check the chain since the last
verified position first, and refuse (exit 1, the reason) when it does not hold."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from audit.gate import check, last_verified
from cli.main import app
from ledger.application import EVENTS_TABLE
from ledger.seal import Sealer
from tests.csvdata import decisions_csv, encounter, encounters_csv
from tests.e2e.conftest import KEY

COMMANDS = (["compare", "historical", "parity"], ["replay", "--rules", "parity"],
            ["reconcile", "--rules", "historical"])


def _ingest(cli_env: Path, runner: CliRunner, name: str, refs: list[str]) -> None:
    path = encounters_csv(cli_env / f"{name}.csv", [encounter(r) for r in refs])
    assert runner.invoke(app, ["ingest", str(path)]).exit_code == 0
    decided = decisions_csv(cli_env / f"{name}-d.csv", [
        {"association": "SOS-75", "encounter_ref": r, "decided_at": "20/09/2023",
         "paid_amount": "25,00", "paid_codes": "G"} for r in refs])
    assert runner.invoke(app, ["ingest", str(decided)]).exit_code == 0


def test_a_check_starts_where_the_last_full_verification_ended(cli_env: Path,
                                                              runner: CliRunner) -> None:
    _ingest(cli_env, runner, "a", ["E-1", "E-2"])
    sealer = Sealer(KEY.encode())
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"], autocommit=True) as conn:
        first = check(conn, sealer)
        assert first.ok and first.since == 0 and first.report.events_checked > 4
        assert last_verified(conn, sealer)[0] == 0  # a check records nothing
        assert runner.invoke(app, ["verify"]).exit_code == 0
        head = first.report.head_position
        assert last_verified(conn, sealer)[0] == head
        _ingest(cli_env, runner, "b", ["E-3"])
        second = check(conn, sealer)
        assert second.ok and second.since == head
        assert second.report.events_checked == second.report.head_position - head
        # A verified position recorded under another key is not trusted.
        assert last_verified(conn, Sealer(b"another key")) == (0, bytes(32))


def test_an_edited_event_stops_every_result_until_overridden(cli_env: Path,
                                                             runner: CliRunner) -> None:
    _ingest(cli_env, runner, "a", ["E-1", "E-2"])
    assert runner.invoke(app, ["verify"]).exit_code == 0  # records its head as verified
    _ingest(cli_env, runner, "b", ["E-3", "E-4"])
    for command in COMMANDS:
        assert runner.invoke(app, command).exit_code in (0, 1)  # reconcile: 1 on findings
    # What a superuser can do: change the regulation of E-4 after the last verification.
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"]) as conn:
        conn.execute(f"ALTER TABLE {EVENTS_TABLE} DISABLE TRIGGER USER")
        conn.execute(
            f"UPDATE {EVENTS_TABLE} SET state = convert_to(replace(convert_from(state, "
            "'UTF8'), '\"regulation_origin\":\"SOS\"', '\"regulation_origin\":\"SAS\"'), "
            "'UTF8') WHERE convert_from(state, 'UTF8') LIKE '%\"E-4\"%' "
            "AND topic LIKE '%Recorded'")
        conn.execute(f"ALTER TABLE {EVENTS_TABLE} ENABLE TRIGGER USER")
    for command in COMMANDS:
        refused = runner.invoke(app, command)
        assert refused.exit_code == 1, (command, refused.output)
        assert "link mismatch" in refused.output and "Nothing was computed" in refused.output
        forced = runner.invoke(app, [*command, "--unverified"])
        assert "WARNING" in forced.output and "not evidence" in forced.output, forced.output
        assert forced.exception is None or isinstance(forced.exception, SystemExit)
    assert runner.invoke(app, ["compare", "historical", "parity", "--unverified"]).exit_code == 0


def test_an_event_edited_before_the_last_full_verification_is_found_by_the_next(
        cli_env: Path, runner: CliRunner) -> None:
    _ingest(cli_env, runner, "a", ["E-1", "E-2"])
    assert runner.invoke(app, ["verify"]).exit_code == 0
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"]) as conn:
        conn.execute(f"ALTER TABLE {EVENTS_TABLE} DISABLE TRIGGER USER")
        conn.execute(f"UPDATE {EVENTS_TABLE} SET state = convert_to(replace(convert_from("
                     "state, 'UTF8'), '25.00', '99.00'), 'UTF8') WHERE notification_id = 3")
        conn.execute(f"ALTER TABLE {EVENTS_TABLE} ENABLE TRIGGER USER")
    full = runner.invoke(app, ["verify"])
    assert full.exit_code == 1 and "BROKEN at position 3 (link mismatch)" in full.output
    # That verification recorded nothing: the checks start from the first event again.
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"], autocommit=True) as conn:
        gate = check(conn, Sealer(KEY.encode()))
    assert gate.since == 0 and not gate.ok


def test_an_extract_after_the_last_verification_does_not_stop_results(
        cli_env: Path, runner: CliRunner) -> None:
    # The extract records a digest with a Merkle root past the verified head: a check from
    # that head cannot rebuild the root (it needs every leaf), and checks the digest's link.
    _ingest(cli_env, runner, "a", ["E-1", "E-2"])
    assert runner.invoke(app, ["verify"]).exit_code == 0
    _ingest(cli_env, runner, "b", ["E-3"])
    extract = runner.invoke(app, ["audit", "extract", "--association", "SOS-75", "--from",
                                  "2023-09-01", "--to", "2023-09-30", "--out",
                                  str(cli_env / "case")])
    assert extract.exit_code == 0, extract.output
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"], autocommit=True) as conn:
        gate = check(conn, Sealer(KEY.encode()))
    assert gate.ok and gate.since > 0 and gate.report.digests_checked == 1, gate
    assert runner.invoke(app, ["compare", "historical", "parity"]).exit_code == 0
