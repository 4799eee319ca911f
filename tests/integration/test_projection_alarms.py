"""A malformed event in the log never stops the projection: it is left out, with an alarm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

from typer.testing import CliRunner

from ledger.application import EVENTS_TABLE
from ledger.ingest.events import T_DECIDED, T_RECORDED
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection
from projections import facts_table
from tests.csvdata import encounter, encounters_csv


def _insert_by_hand(conn: Any, topic: str, state: dict[str, Any]) -> int:
    """An event inserted as any role with INSERT could: at the next position, unchained."""
    row = conn.execute(
        f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
        "VALUES (%s, 1, %s, %s) RETURNING notification_id",
        (uuid4(), topic, json.dumps(state).encode())).fetchone()
    return int(row[0])


def test_malformed_events_are_left_out_with_their_position_and_reason(
        ledger_db: Connection, conn: Any, pseudo: Pseudonymiser, tmp_path: Path,
        monkeypatch: Any) -> None:
    ingest_file(conn, encounters_csv(tmp_path / "a.csv", [encounter("E-1"), encounter("E-2")]),
                pseudo)
    ingest_file(conn, encounters_csv(tmp_path / "b.csv", [encounter("E-3")]), pseudo)
    facts = json.loads(conn.execute(
        f"SELECT convert_from(state, 'UTF8') FROM {EVENTS_TABLE} WHERE topic = %s LIMIT 1",
        (T_RECORDED,)).fetchone()[0])
    missing = {**facts, "facts": {k: v for k, v in facts["facts"].items() if k != "act"}}
    no_act = _insert_by_hand(conn, T_RECORDED, missing)
    not_money = _insert_by_hand(conn, T_DECIDED, {
        "timestamp": facts["timestamp"], "decision": {"decided_at": "2023-09-20",
                                                      "paid_amount": "abc"}})
    conn.execute(f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
                 "VALUES (%s, 1, %s, %s)", (uuid4(), T_RECORDED, b"{not json"))

    facts_table.catch_up(conn)
    refs = [r for (r,) in conn.execute("SELECT encounter_ref FROM encounter_facts ORDER BY 1")]
    assert refs == ["E-1", "E-2", "E-3"]  # every good event
    found = facts_table.alarms(conn)
    assert [p for p, _ in found] == [no_act, not_money, not_money + 1]
    assert "act" in found[0][1] and "numeric" in found[1][1] and "json" in found[2][1].lower()
    # A rebuild leaves them out the same way.
    facts_table.rebuild(conn, Connection(ledger_db.url).connect)
    assert [p for p, _ in facts_table.alarms(conn)] == [p for p, _ in found]
    assert conn.execute("SELECT count(*) FROM encounter_facts").fetchone()[0] == 3

    # The CLI keeps working, and says what it left out.
    from cli.main import app

    monkeypatch.setenv("CLAIMS_DATABASE_URL", ledger_db.url)
    monkeypatch.setenv("CLAIMS_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["project"])
    assert result.exit_code == 0, result.output
    assert f"position {no_act}:" in result.output and "could not be projected" in result.output
