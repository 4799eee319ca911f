"""Only the ledger extends the log: an event inserted by hand is an alarm, and no write goes on
over it until an operator has reviewed and adopted it."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from cli.main import app
from ledger.application import EVENTS_TABLE
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
