"""The facts projection: incremental, exactly once, rebuildable, bitemporal — real PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ledger.vocabulary import PARIS
from ops.database import Connection
from projections import facts_table
from projections.snapshot import snapshot
from tests.csvdata import ENCOUNTER_HEADER, decisions_csv, encounter, encounters_csv

T1 = datetime(2024, 1, 10, 9, 0, tzinfo=PARIS)
T2 = datetime(2024, 3, 10, 9, 0, tzinfo=PARIS)


def tables(conn: Any) -> tuple[list[Any], list[Any]]:
    facts = conn.execute("SELECT * FROM encounter_fact_versions ORDER BY encounter_id, version"
                         ).fetchall()
    decisions = conn.execute("SELECT * FROM encounter_decisions ORDER BY encounter_id, version"
                             ).fetchall()
    return facts, decisions


def history(conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    ingest_file(conn, encounters_csv(tmp_path / "a.csv", [encounter(f"E-{i}") for i in range(6)]),
                pseudo, now=T1)
    ingest_file(conn, encounters_csv(tmp_path / "b.csv", [
        encounter("E-1", regulation_origin="SAS", billed_codes="G+SNP", billed_amount="40,00"),
        encounter("E-2", status="void")]), pseudo, now=T2)
    ingest_file(conn, decisions_csv(tmp_path / "d.csv", [
        {"association": "SOS-75", "encounter_ref": "E-3", "decided_at": "2023-10-01",
         "paid_amount": "25.00", "paid_codes": "G"}]), pseudo, now=T2)


def test_incremental_catch_up_is_exactly_once_and_equals_rebuild(
        ledger_db: Connection, conn: Any, pseudo: Pseudonymiser, tmp_path: Path,
        monkeypatch: Any) -> None:
    ingest_file(conn, encounters_csv(tmp_path / "0.csv", [encounter("E-0")]), pseudo, now=T1)
    assert facts_table.catch_up(conn) == (0, 3)
    history(conn, pseudo, tmp_path)
    start, end = facts_table.catch_up(conn)
    assert start == 3 and end > start
    assert facts_table.catch_up(conn) == (end, end)  # nothing twice
    incremental = tables(conn)
    assert len(incremental[0]) == 6 + 2 and len(incremental[1]) == 1
    assert facts_table.rebuild(conn, ledger_db.connect) == (0, end)
    assert tables(conn) == incremental
    assert facts_table.position(conn) == end
    indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename LIKE 'encounter_%' "
                           "ORDER BY 1").fetchall()
    assert [i for (i,) in indexes] == ["encounter_decisions_pkey", "encounter_fact_versions_pkey",
                                       "encounter_fact_versions_ref"]
    monkeypatch.setattr(facts_table, "RANGE_EVENTS", 2)
    assert facts_table.rebuild(conn) == (0, end)  # one connection: the ranges in turn
    assert tables(conn) == incremental
    assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'encounter_%'"
                        ).fetchone() == (3,)
    current = conn.execute("SELECT encounter_ref, regulation_origin FROM encounter_facts "
                           "ORDER BY encounter_ref").fetchall()
    assert current == [("E-0", "SOS"), ("E-1", "SAS"), ("E-3", "SOS"), ("E-4", "SOS"),
                       ("E-5", "SOS")]


def test_as_of_snapshot_ignores_later_corrections(conn: Any, pseudo: Pseudonymiser,
                                                  tmp_path: Path) -> None:
    history(conn, pseudo, tmp_path)
    before = snapshot(conn, tmp_path / "cache", as_of=datetime(2024, 2, 1, tzinfo=PARIS))
    now = snapshot(conn, tmp_path / "cache")
    with duckdb.connect() as duck:
        old = duck.execute(f"SELECT encounter_ref, regulation_origin FROM '{before}' "
                           "ORDER BY 1").fetchall()
        new = duck.execute(f"SELECT encounter_ref, regulation_origin, delay_seconds, "
                           f"performed_local FROM '{now}' ORDER BY 1").fetchall()
    assert old == [(f"E-{i}", "SOS") for i in range(6)]
    assert [r[:2] for r in new] == [("E-0", "SOS"), ("E-1", "SAS"), ("E-3", "SOS"),
                                    ("E-4", "SOS"), ("E-5", "SOS")]
    assert new[0][2] == 65 * 60  # 10:05 -> 11:10
    assert new[0][3] == datetime(2023, 9, 14, 11, 10)  # Paris wall clock, naive


def test_rebuild_in_ranges_equals_the_incremental_projection_on_odd_values(
        ledger_db: Connection, conn: Any, pseudo: Pseudonymiser, tmp_path: Path,
        monkeypatch: Any) -> None:
    # Quotes, backslashes, tabs, separators and accents in texts; empty and missing values; an
    # empty code list; ranges of three positions shared out to two connections.
    monkeypatch.setattr(facts_table, "RANGE_EVENTS", 3)
    odd = ['Q"1', "B\\2", "T\t3", "S;4", "Ré-5", "N 6"]
    rows = [encounter(ref, invoice_ref=ref, patient_ref=ref) for ref in odd]
    rows.append(encounter("E-7", regulation_origin="NONE", regulated_at="", invoice_ref=""))
    path = tmp_path / "odd.csv"
    header = [*ENCOUNTER_HEADER, "invoice_ref"]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")  # quotes the cells that need it
        writer.writerows([header, *([r.get(h, "") for h in header] for r in rows)])
    report = ingest_file(conn, path, pseudo, now=T1)
    assert report.recorded == 7, report.quarantined
    ingest_file(conn, decisions_csv(tmp_path / "d.csv", [
        {"association": "SOS-75", "encounter_ref": 'Q"1', "decided_at": "2023-10-01",
         "paid_amount": "0", "paid_codes": "", "rejected_codes": "G", "reason": 'a "b"\\c'},
        {"association": "SOS-75", "encounter_ref": "E-7", "decided_at": "2023-10-02",
         "paid_amount": "25.00", "paid_codes": "G"}]), pseudo, now=T2)
    history(conn, pseudo, tmp_path)
    facts_table.catch_up(conn)
    incremental = tables(conn)
    facts_table.rebuild(conn, ledger_db.connect)
    assert tables(conn) == incremental
    assert any(r[5] == 'Q"1' and r[17] == 'Q"1' for r in incremental[0])
    assert any(r[8] == 'a "b"\\c' and r[6] == "" for r in incremental[1])


def test_a_state_laid_out_otherwise_projects_the_same(conn: Any, pseudo: Pseudonymiser,
                                                      tmp_path: Path) -> None:
    # The projection cuts the payload out of the bytes of a state laid out as the ledger writes
    # it, and parses any other state whole. Each event again, under another id, with its state
    # laid out otherwise (indented; compact with the provenance between the payload and its
    # digest), projects to the same row. Texts that look like the layout's markers do not move
    # the cut.
    markers = ['J},"facts_sha256":"8', 'I"facts":{9"provenance":', '},"decision_sha256":"']
    ingest_file(conn, encounters_csv(tmp_path / "m.csv", [
        encounter(f"M-{i}", invoice_ref=m, patient_ref=m) for i, m in enumerate(markers)]),
        pseudo, now=T1)
    ingest_file(conn, decisions_csv(tmp_path / "md.csv", [
        {"association": "SOS-75", "encounter_ref": "M-0", "decided_at": "2023-10-01",
         "paid_amount": "25.00", "paid_codes": "G", "reason": markers[2]}]), pseudo, now=T2)
    history(conn, pseudo, tmp_path)

    def provenance_second(state: dict[str, Any]) -> dict[str, Any]:
        first = [k for k in state if k not in ("provenance", "facts_sha256", "decision_sha256")]
        return {**{k: state[k] for k in first}, "provenance": state["provenance"], **state}

    layouts = {"indented": lambda state: json.dumps(state, indent=1),
               "reordered": lambda state: json.dumps(provenance_second(state),
                                                     separators=(",", ":"))}
    events = conn.execute("SELECT originator_id, originator_version, topic, state "
                          "FROM claimsledger_events WHERE topic LIKE 'ledger.domain:Encounter.%' "
                          "ORDER BY notification_id").fetchall()
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO claimsledger_events (originator_id, originator_version, topic, state) "
            "VALUES (md5(%s::text || %s)::uuid, %s, %s, %s)",
            [(oid, name, version, topic, lay(json.loads(state)).encode())
             for name, lay in layouts.items() for oid, version, topic, state in events])
    facts_table.catch_up(conn)
    for table in ("encounter_fact_versions", "encounter_decisions"):
        for name in layouts:
            pairs = conn.execute(
                f"SELECT to_jsonb(o) - 'encounter_id' - 'notification_id', "
                f"to_jsonb(t) - 'encounter_id' - 'notification_id' FROM {table} o "
                f"JOIN {table} t ON t.encounter_id = md5(o.encounter_id::text || %s)::uuid "
                "AND t.version = o.version", (name,)).fetchall()
            assert len(pairs) * 3 == conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert pairs and all(original == twin for original, twin in pairs), (table, name)
    invoices = [r for (r,) in conn.execute("SELECT invoice_ref FROM encounter_fact_versions")]
    assert all(invoices.count(m) == 3 for m in markers)
    reasons = [r for (r,) in conn.execute("SELECT reason FROM encounter_decisions")]
    assert reasons.count(markers[2]) == 3
