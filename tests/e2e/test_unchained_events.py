"""Only the ledger extends the log: an event inserted by hand is an alarm, and no write goes on
over it until an operator has reviewed and adopted it."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cli.main import app
from ledger.application import EVENTS_TABLE
from ledger.chain import next_link
from ledger.seal import Sealer
from tests.csvdata import encounter, encounters_csv


def test_an_event_inserted_by_hand_stops_writes_until_adopted(cli_env: Path,
                                                              runner: CliRunner) -> None:
    first = encounters_csv(cli_env / "a.csv", [encounter("E-1"), encounter("E-2")])
    assert runner.invoke(app, ["ingest", str(first)]).exit_code == 0
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"], autocommit=True) as conn:
        # A new event, and a copy of a real one under another aggregate id.
        conn.execute(f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, "
                     "state) SELECT gen_random_uuid(), 1, 'x:Y', '\\x7b7d'::bytea")
        conn.execute(f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, "
                     f"state) SELECT gen_random_uuid(), 1, topic, state FROM {EVENTS_TABLE} "
                     "WHERE topic LIKE '%Encounter.Recorded' LIMIT 1")
        last = conn.execute(f"SELECT max(notification_id) FROM {EVENTS_TABLE}").fetchone()[0]
        before = conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0]

    verify = runner.invoke(app, ["verify"])
    assert verify.exit_code == 1
    assert f"positions {last - 1}-{last} have no chain link" in verify.output
    second = encounters_csv(cli_env / "b.csv", [encounter("E-3")])
    refused = runner.invoke(app, ["ingest", str(second)])
    assert refused.exit_code == 1 and "no chain link" in refused.output
    assert "Traceback" not in refused.output
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"]) as conn:
        assert conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0] == before
    project = runner.invoke(app, ["project"])
    assert project.exit_code == 0, project.output  # the rest is still projected
    compare = runner.invoke(app, ["compare", "historical", "parity"])
    assert compare.exit_code == 0 or "no chain link" in compare.output, compare.output
    assert compare.exception is None or isinstance(compare.exception, SystemExit)

    wrong = runner.invoke(app, ["audit", "adopt", "--through", str(last - 1)])
    assert wrong.exit_code == 1 and f"last position is {last}" in wrong.output
    adopted = runner.invoke(app, ["audit", "adopt", "--through", str(last)])
    assert adopted.exit_code == 0, adopted.output
    assert runner.invoke(app, ["verify"]).exit_code == 0
    assert runner.invoke(app, ["ingest", str(second)]).exit_code == 0


def _chain_by_hand(conn: psycopg.Connection) -> int:
    """Chain the events past the chain head as the ledger would, without its key: what anyone
    who may INSERT and read the formula can do. Returns the last position."""
    head, link = conn.execute("SELECT notification_id, link FROM claims_chain "
                              "ORDER BY notification_id DESC LIMIT 1").fetchone()
    link = bytes(link)
    rows = conn.execute(
        f"SELECT notification_id, originator_id, originator_version, topic, state FROM "
        f"{EVENTS_TABLE} WHERE notification_id > %s ORDER BY notification_id", (head,)).fetchall()
    for nid, oid, version, topic, state in rows:
        link = next_link(link, nid, oid, version, topic, bytes(state))
        conn.execute("INSERT INTO claims_chain (notification_id, link) VALUES (%s, %s)",
                     (nid, link))
    return int(rows[-1][0])


def test_an_event_chained_by_hand_is_not_sealed_and_stops_writes(cli_env: Path,
                                                                 runner: CliRunner) -> None:
    first = encounters_csv(cli_env / "a.csv", [encounter("E-1"), encounter("E-2")])
    assert runner.invoke(app, ["ingest", str(first)]).exit_code == 0
    assert runner.invoke(app, ["verify"]).exit_code == 0
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"], autocommit=True) as conn:
        # A copy of a real event under another aggregate id, chained by the formula.
        conn.execute(f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, "
                     f"state) SELECT gen_random_uuid(), 1, topic, state FROM {EVENTS_TABLE} "
                     "WHERE topic LIKE '%Encounter.Recorded' LIMIT 1")
        last = _chain_by_hand(conn)

    verify = runner.invoke(app, ["verify"])
    assert verify.exit_code == 1, verify.output
    assert f"1 event(s) at positions {last}-{last} are chained but not sealed" in verify.output
    second = encounters_csv(cli_env / "b.csv", [encounter("E-3")])
    refused = runner.invoke(app, ["ingest", str(second)])
    assert refused.exit_code == 1, refused.output
    assert f"positions {last}-{last} of the event log are chained but not sealed" in (
        refused.output)
    assert "Traceback" not in refused.output

    adopted = runner.invoke(app, ["audit", "adopt", "--through", str(last)])
    assert adopted.exit_code == 0, adopted.output
    assert runner.invoke(app, ["verify"]).exit_code == 0
    assert runner.invoke(app, ["ingest", str(second)]).exit_code == 0


def test_a_seal_made_without_the_key_is_found_and_stops_writes(
        cli_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    first = encounters_csv(cli_env / "a.csv", [encounter("E-1")])
    assert runner.invoke(app, ["ingest", str(first)]).exit_code == 0
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, "
                     "state) SELECT gen_random_uuid(), 1, 'x:Y', '\\x7b7d'::bytea")
        last = _chain_by_hand(conn)
        # A seal under a guessed key.
        conn.execute("INSERT INTO claims_chain_seals (notification_id, seal) SELECT "
                     "notification_id, %s FROM claims_chain WHERE notification_id = %s",
                     (Sealer(b"not the key").seal(last, bytes(32)), last))

    verify = runner.invoke(app, ["verify"])
    assert verify.exit_code == 1, verify.output
    assert f"BROKEN at position {last} (seal mismatch)" in verify.output
    refused = runner.invoke(app, ["ingest", str(encounters_csv(cli_env / "b.csv",
                                                               [encounter("E-3")]))])
    assert refused.exit_code == 1
    assert f"the seal at position {last} does not hold under this ledger's key" in (
        refused.output)
    # Without the key, verify still sees where the seals are, not whether they hold.
    monkeypatch.delenv("CLAIMS_PSEUDONYM_KEY")
    keyless = runner.invoke(app, ["verify"])
    assert keyless.exit_code == 0 and "their positions only" in keyless.output
