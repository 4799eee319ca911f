"""The fast path (DuckDB, ``columnar``) writes exactly the events of the row-by-row path."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from ledger import quarantine, store
from ledger.application import EVENTS_TABLE
from ledger.ingest import known, reader
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ledger.store import EventWriter, init_schema
from ledger.synth import generate
from ledger.vocabulary import PARIS
from ops.database import Connection
from tests.csvdata import decisions_csv, encounter, encounters_csv

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=PARIS)


def stored(conn_info: Connection) -> list[tuple[Any, ...]]:
    with conn_info.connect() as conn:
        rows = conn.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {EVENTS_TABLE} ORDER BY notification_id").fetchall()
        links = conn.execute("SELECT notification_id, link FROM claims_chain "
                             "ORDER BY notification_id").fetchall()
    return [(*r[:4], bytes(r[4])) for r in rows] + [(n, bytes(link)) for n, link in links]


def ingest_all(conn_info: Connection, files: list[Path], pseudo: Pseudonymiser,
               accelerate: bool) -> list[dict[str, Any]]:
    init_schema(conn_info, conn_info.library_env())
    reports = []
    with conn_info.connect() as conn:
        for path in files:
            # The fast path reads decisions' lookups ahead on a second connection.
            report = ingest_file(conn, path, pseudo, now=NOW, accelerate=accelerate,
                                 side_connect=conn_info.connect if accelerate else None)
            reports.append(report.as_json())
    return reports


def revised(decisions: Path, out: Path) -> Path:
    """The decisions again, every fourth one revised (nothing paid), with one decision of an
    unknown encounter: repeats, new decisions and a quarantined row mixed in each block."""
    header, *lines = decisions.read_text(encoding="utf-8").splitlines()
    rows = [header]
    for i, line in enumerate(lines):
        cells = line.split(";")
        if i % 4 == 0:
            cells[3] = "0,00"
        rows.append(";".join(cells))
        if i == 100:
            rows.append("SOS-75;NOPE-1;01/06/2023;25,00;G;;")
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def test_fast_and_row_by_row_paths_store_the_same_bytes(
        db: Connection, other_db: Connection, pseudo: Pseudonymiser, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Small blocks: some hold a bad row or a known encounter (the rows go one by one), the
    # others are taken whole and appended as DuckDB framed them, sent in slices of 7 rows.
    monkeypatch.setattr(reader, "BLOCK_BYTES", 4 << 10)
    monkeypatch.setattr(store, "LINK_SLICE_ROWS", 7)
    # The quarantine's batch keys and nonces repeat, so that its digests in the log do too.
    monkeypatch.setattr(quarantine, "random_bytes", lambda n: bytes(range(n)))
    framed: Counter[str] = Counter()
    append_framed = EventWriter.append_framed

    def counting(self: EventWriter, rows: Any, ends: Any, topic: str, versions: Any,
                 *complete: Any) -> int:
        framed[topic.rsplit(".", 1)[-1]] += 1
        framed["highest version"] = max(framed["highest version"], int(np.max(versions, initial=0)))
        return append_framed(self, rows, ends, topic, versions, *complete)

    monkeypatch.setattr(EventWriter, "append_framed", counting)
    data = generate(tmp_path / "synth", associations=3, start=date(2023, 3, 20),
                    end=date(2023, 11, 5), encounters=3000, seed=7, bad_rows=25,
                    corrections=0.05, voids=0.01)
    # Decisions first: they are quarantined (unknown encounters) and taken up on re-ingest.
    odd = encounters_csv(tmp_path / "odd.csv", [
        encounter("Q-1", invoice_ref='"F;1"'),  # a quoted separator: the CSV reader's block
        encounter("D-1", performed_at="26/03/2023 02:30"),  # in the DST gap: quarantined
        encounter("D-2", regulated_at="29/10/2023 01:10", performed_at="29/10/2023 03:00"),
        encounter("U-1", patient_ref="P\u00a01 ", invoice_ref="Fé-1"),
        encounter("S-1", status="VOID", billed_codes=" g + md ", billed_amount="1 000,5"),
        encounter("E-1", performed_at="2023-09-14T11:10:00+02:00"),
    ])
    files = [data.decisions_path, data.encounters_path, data.corrections_path,
             data.decisions_path, revised(data.decisions_path, tmp_path / "revised.csv"), odd]
    fast = ingest_all(db, files, pseudo, accelerate=True)
    slow = ingest_all(other_db, files, pseudo, accelerate=False)
    assert fast == slow
    assert fast[1]["recorded"] > 2900 and fast[1]["quarantined"]
    assert fast[2]["corrected"] > 0 and fast[2]["voided"] > 0 and fast[3]["decided"] > 2000
    assert fast[4]["decided"] > 500 and fast[4]["unchanged"] > 1500
    assert [q["reason"] for q in fast[4]["quarantined"]] == [
        "unknown encounter SOS-75/NOPE-1 (re-ingest this file once the encounter is in the "
        "ledger)"]
    # Decisions framed whole after corrections, voids and earlier decisions (revisions: v3+).
    assert framed["Recorded"] > 5 and framed["Decided"] > 5, framed
    assert framed["highest version"] >= 3, framed
    assert stored(db) == stored(other_db)


@pytest.mark.parametrize("accelerate", [True, False])
def test_one_encounter_twice_far_apart_in_a_file_is_recorded_then_corrected(
        conn: Any, pseudo: Pseudonymiser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        accelerate: bool) -> None:
    # Far apart: in another lookup chunk (row by row) or another block (fast path).
    monkeypatch.setattr(reader, "BLOCK_BYTES", 4096)
    refused = []
    append_framed = EventWriter.append_framed

    def counting(self: EventWriter, *args: Any) -> int:
        try:
            return append_framed(self, *args)
        except psycopg.errors.UniqueViolation:
            refused.append(len(args[1]))  # the block of E-1 again, written first as new
            raise

    monkeypatch.setattr(EventWriter, "append_framed", counting)
    rows = [encounter(f"E-{i}") for i in range(6000)]
    rows.append(encounter("E-1", billed_amount="30,00"))
    report = ingest_file(conn, encounters_csv(tmp_path / "e.csv", rows), pseudo,
                         accelerate=accelerate)
    assert (report.recorded, report.corrected, report.quarantined) == (6000, 1, [])
    # Fast path: the last block, refused whole by the primary key, then written row by row.
    assert len(refused) == (1 if accelerate else 0)
    for table in (EVENTS_TABLE, "claims_chain"):  # and the batch's two events; no gap
        assert conn.execute(f"SELECT count(*), max(notification_id) FROM {table}"
                            ).fetchone() == (6003, 6003)
    versions = conn.execute(
        f"SELECT originator_version, topic FROM {EVENTS_TABLE} e WHERE originator_id = "
        "(SELECT originator_id FROM " + EVENTS_TABLE + " WHERE topic LIKE '%Corrected')"
        " ORDER BY 1").fetchall()
    assert [v for v, _ in versions] == [1, 2]


def test_decisions_read_ahead_see_the_batch_own_decisions(
        ledger_db: Connection, conn: Any, pseudo: Pseudonymiser, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Read ahead on a second connection, a later block's lookup cannot see the decisions this
    # batch wrote in an earlier one: they are read again on the batch's own connection.
    monkeypatch.setattr(reader, "BLOCK_BYTES", 4096)
    refs = [f"E-{i}" for i in range(3000)]
    ingest_file(conn, encounters_csv(tmp_path / "e.csv", [encounter(r) for r in refs]), pseudo)
    rows = [{"association": "SOS-75", "encounter_ref": r, "decided_at": "20/09/2023",
             "paid_amount": "25,00", "paid_codes": "G"} for r in refs]
    # E-1 decided again far below (another block): a revision, at version 3.
    rows.append({**rows[1], "paid_amount": "0,00", "paid_codes": "", "rejected_codes": "G"})
    rows.append(rows[2])  # E-2 again, the same decision: unchanged
    ahead: list[int] = []
    decisions = known.decisions

    def counting(c: Any, ids: Any) -> Any:
        if c is not conn:
            ahead.append(len(ids) // 16)
        return decisions(c, ids)

    monkeypatch.setattr(known, "decisions", counting)
    report = ingest_file(conn, decisions_csv(tmp_path / "d.csv", rows), pseudo,
                         side_connect=ledger_db.connect)
    assert (report.decided, report.unchanged, report.quarantined) == (3001, 1, [])
    assert sum(ahead) == len(rows) and len(ahead) > 5  # every framed block read ahead
    versions = conn.execute(
        "SELECT originator_version, s->'decision'->>'paid_amount' FROM (SELECT "
        f"originator_version, convert_from(state, 'UTF8')::jsonb AS s FROM {EVENTS_TABLE} "
        "WHERE topic LIKE '%Decided') d WHERE s->'provenance'->>'line' IN ('3', '3002', '3003')"
        " ORDER BY 1, 2").fetchall()
    assert versions == [(2, "25.00"), (3, "0.00")]  # E-1 then its revision; E-2 once
