"""Ingestion: idempotency, corrections, quarantine, decisions — on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

from ledger import lookups, quarantine
from ledger.application import EVENTS_TABLE
from ledger.ingest import known
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from projections import facts_table
from tests.csvdata import decisions_csv, encounter, encounters_csv


def events(conn: Any) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0])


def test_same_file_twice_writes_nothing_the_second_time(conn: Any, pseudo: Pseudonymiser,
                                                        tmp_path: Path) -> None:
    path = encounters_csv(tmp_path / "e.csv", [encounter(f"E-{i}") for i in range(5)])
    first = ingest_file(conn, path, pseudo)
    assert (first.recorded, first.new_events) == (5, 7)
    before = events(conn)
    second = ingest_file(conn, path, pseudo)
    assert second.new_events == 0 and second.already_ingested
    assert events(conn) == before


def test_same_rows_in_another_file_are_unchanged(conn: Any, pseudo: Pseudonymiser,
                                                 tmp_path: Path) -> None:
    ingest_file(conn, encounters_csv(tmp_path / "a.csv", [encounter("E-1")]), pseudo)
    same = [encounter("E-1", billed_amount="25.00")]
    again = ingest_file(conn, encounters_csv(tmp_path / "b.csv", same, sep=","),
                        pseudo)
    assert again.unchanged == 1 and again.recorded == 0 and again.corrected == 0


def test_changed_row_is_a_correction_and_both_versions_are_kept(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    ingest_file(conn, encounters_csv(tmp_path / "a.csv", [encounter("E-1")]), pseudo)
    report = ingest_file(conn, encounters_csv(
        tmp_path / "b.csv", [encounter("E-1", regulation_origin="SAS", billed_codes="G+SNP",
                                       billed_amount="40,00")]), pseudo)
    assert report.corrected == 1
    facts_table.catch_up(conn)
    versions = conn.execute(
        "SELECT version, regulation_origin, billed_amount::text FROM encounter_fact_versions "
        "ORDER BY version").fetchall()
    assert versions == [(1, "SOS", "25.00"), (2, "SAS", "40.00")]
    state = conn.execute(
        f"SELECT convert_from(state, 'UTF8')::jsonb->'changed' FROM {EVENTS_TABLE} "
        "WHERE topic LIKE %s", ("%Corrected",)).fetchone()[0]
    assert state == ["billed_amount", "billed_codes", "regulation_origin"]


def test_void_then_facts_view_hides_it(conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    ingest_file(conn, encounters_csv(tmp_path / "a.csv",
                                     [encounter("E-1"), encounter("E-2")]), pseudo)
    report = ingest_file(conn, encounters_csv(tmp_path / "v.csv",
                                              [encounter("E-2", status="void")]), pseudo)
    assert report.voided == 1
    facts_table.catch_up(conn)
    assert conn.execute("SELECT array_agg(encounter_ref) FROM encounter_facts").fetchone()[0] \
        == ["E-1"]


def test_bad_rows_are_quarantined_with_line_and_reason_good_rows_ingested(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    rows = [
        encounter("E-1", invoice_ref="Fé-1"),
        encounter("E-2", performed_at="31/02/2023 10:00"),          # bad date, line 3
        encounter("E-3", regulation_origin="MAIRIE"),                # unknown origin, line 4
        encounter("E-4", billed_amount="-25,00"),                    # negative amount, line 5
        encounter("E-5", regulated_at=""),                           # missing regulation time
        encounter("E-6"),
    ]
    path = encounters_csv(tmp_path / "bad.csv",
                          [{**r, "invoice_ref": r.get("invoice_ref", "")} for r in rows])
    text = path.read_bytes()
    # A row with a missing column and a row in the wrong encoding:
    text += b"SOS-75;E-7;SOS;14/09/2023 10:05\n"
    text += "SOS-75;E-8;SOS;14/09/2023 10:05;14/09/2023 11:10;visit;P-1;10101010101;0;0;" \
            "VG;25,00;Hôpital\n".encode("cp1252")
    path.write_bytes(text)
    report = ingest_file(conn, path, pseudo)
    by_line = {p.line: p for p in report.quarantined}
    assert sorted(by_line) == [3, 4, 5, 6, 8, 9]
    assert by_line[3].column == "performed_at" and "not a valid date-time" in by_line[3].reason
    assert by_line[4].column == "regulation_origin"
    assert by_line[5].column == "billed_amount" and "negative" in by_line[5].reason
    assert "regulated_at is required" in by_line[6].reason
    assert "4 fields" in by_line[8].reason
    assert "not valid UTF-8" in by_line[9].reason
    # Each bad row's text is sealed outside the log, and comes back for the key holder.
    texts = quarantine.show(conn, report.batch_id,
                            quarantine.logged_digests(conn, report.batch_id))
    assert [t.line for t in texts] == [3, 4, 5, 6, 8, 9] and all(t.digest_ok for t in texts)
    assert all("E-" in t.text for t in texts) and "Hôpital" in texts[-1].text
    assert report.recorded == 2 and report.rows == 8
    facts_table.catch_up(conn)
    assert conn.execute("SELECT count(*) FROM encounter_facts").fetchone()[0] == 2
    stored = conn.execute(
        f"SELECT convert_from(state, 'UTF8')::jsonb->'quarantined' FROM {EVENTS_TABLE} "
        "WHERE topic LIKE %s", ("%Completed",)).fetchone()[0]
    assert [q["line"] for q in stored] == [3, 4, 5, 6, 8, 9]
    assert all(q["raw"] is None and len(q["raw_digest"]) == 64 for q in stored)


def test_decisions_unknown_encounter_quarantined_then_reingested(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    ingest_file(conn, encounters_csv(tmp_path / "e1.csv", [encounter("E-1")]), pseudo)
    decisions = decisions_csv(tmp_path / "d.csv", [
        {"association": "SOS-75", "encounter_ref": "E-1", "decided_at": "01/10/2023",
         "paid_amount": "25,00", "paid_codes": "G"},
        {"association": "SOS-75", "encounter_ref": "E-2", "decided_at": "01/10/2023",
         "paid_amount": "0", "rejected_codes": "SNP", "reason": "RSP-12"},
    ])
    first = ingest_file(conn, decisions, pseudo)
    assert first.decided == 1
    assert [p.reason.split(" ")[:2] for p in first.quarantined] == [["unknown", "encounter"]]
    ingest_file(conn, encounters_csv(tmp_path / "e2.csv", [encounter("E-2")]), pseudo)
    second = ingest_file(conn, decisions, pseudo)
    assert (second.decided, second.unchanged, second.quarantined) == (1, 1, [])
    third = ingest_file(conn, decisions, pseudo)
    assert third.already_ingested and third.new_events == 0
    facts_table.catch_up(conn)
    rows = conn.execute("SELECT paid_amount::text, rejected_codes FROM encounter_decisions "
                        "ORDER BY notification_id").fetchall()
    assert rows == [("25.00", ""), ("0.00", "SNP")]


def test_a_blocks_lookup_goes_by_the_primary_key_even_when_the_planner_would_scan(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    # On a bulk-loaded ledger the planner may expect millions of rows for a block's ids and
    # scan the whole table (seconds a block): the batch's settings leave it the index alone.
    ingest_file(conn, encounters_csv(tmp_path / "e.csv", [encounter(f"E-{i}") for i in range(50)]),
                pseudo)
    ids = lookups.Ids.of(r[0] for r in conn.execute(
        f"SELECT uuid_send(originator_id) FROM {EVENTS_TABLE}"))
    query = known._VERSIONS.as_string(conn)

    def plan() -> str:
        rows = lookups.cursor(conn).execute("EXPLAIN " + query, (ids,)).fetchall()
        return "\n".join(r[0] for r in rows)

    with conn.transaction():
        conn.execute("SET LOCAL random_page_cost = 1000")  # the index made to look dear
        scanned = plan()
        conn.execute(lookups.BY_PRIMARY_KEY)
        indexed = plan()
    assert "Seq Scan" in scanned
    assert "Seq Scan" not in indexed and f"using {EVENTS_TABLE}_pkey" in indexed


def test_ids_go_to_the_server_as_a_uuid_array(conn: Any) -> None:
    ids = [uuid4() for _ in range(3)]
    cur = lookups.cursor(conn)
    for sent in (ids, []):
        got = cur.execute("SELECT %b::uuid[]", (lookups.Ids.of(u.bytes for u in sent),))
        assert got.fetchone()[0] == sent


def all_visible_pages(conn: Any) -> int:
    return int(conn.execute("SELECT relallvisible FROM pg_class WHERE oid = %s::regclass",
                            (EVENTS_TABLE,)).fetchone()[0])


def test_a_decisions_file_settles_the_events_table_first_when_that_pays(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    # Marked all-visible by VACUUM, the pages let the lookups read versions from the primary
    # key alone (``lookups.settle``); a few lookups leave the vacuum to autovacuum.
    refs = [f"E-{i}" for i in range(300)]
    ingest_file(conn, encounters_csv(tmp_path / "e.csv", [encounter(r) for r in refs]), pseudo)
    assert all_visible_pages(conn) == 0
    assert not lookups.settle(conn, 1)
    with conn.transaction():
        assert not lookups.settle(conn, 10**6)  # VACUUM cannot run in a transaction
    assert all_visible_pages(conn) == 0
    report = ingest_file(conn, decisions_csv(tmp_path / "d.csv", [
        {"association": "SOS-75", "encounter_ref": r, "decided_at": "01/10/2023",
         "paid_amount": "25,00", "paid_codes": "G"} for r in refs]), pseudo)
    assert (report.decided, report.quarantined) == (300, [])
    assert all_visible_pages(conn) > 0


def test_synthetic_bad_rows_in_every_file_are_quarantined_not_fatal(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    """Bad rows in the corrections and decisions files too (a bad decision row once crashed
    the ingest: a ``Bad`` row is a tuple, and was taken for an unknown encounter's)."""
    from datetime import date

    from ledger.synth import generate
    from ledger.synth.bad import CORRECTION_KINDS, DECISION_KINDS

    data = generate(tmp_path, associations=2, start=date(2023, 1, 1), end=date(2023, 6, 30),
                    encounters=3000, seed=5, bad_rows=5, bad_other_rows=12)
    assert set(data.bad_corrections) == set(CORRECTION_KINDS)
    assert set(data.bad_decisions) == set(DECISION_KINDS)
    expected = {data.encounters_path: 5, data.corrections_path: 12, data.decisions_path: 12}
    for path, bad in expected.items():
        for accelerate in (True, False):  # the fast path and the row-by-row one
            report = ingest_file(conn, path, pseudo, accelerate=accelerate)
            assert len({p.line for p in report.quarantined}) == bad, (path.name, accelerate)
            assert all(p.reason and p.line > 1 for p in report.quarantined)
    decided = conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE topic LIKE %s",
                           ("%Decided",)).fetchone()[0]
    assert decided == data.decisions
