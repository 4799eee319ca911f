"""Quarantined rows' text: sealed outside the log, read back by the key holder, tamper-evident,
erasable for good; the application cannot erase it and the reader cannot read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger import quarantine
from ledger.application import EVENTS_TABLE
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection
from tests.csvdata import encounter, encounters_csv
from tests.integration.audit.test_roles import DENIED, roles  # noqa: F401 (a fixture)


def _bad_file(tmp_path: Path) -> Path:
    path = encounters_csv(tmp_path / "bad.csv", [encounter("E-1"), encounter("E-2")])
    # A row shifted by one cell: the patient identifier lands where the act goes.
    path.write_bytes(path.read_bytes() + b"SOS-75;E-3;SOS;14/09/2023 10:05;14/09/2023 11:10;"
                                          b"PAT-CLEAR-77;visit;10101010101;0;0;G;25,00;x\n")
    return path


def test_the_text_is_sealed_and_comes_back_checked(conn: Any, pseudo: Pseudonymiser,
                                                   tmp_path: Path) -> None:
    report = ingest_file(conn, _bad_file(tmp_path), pseudo)
    assert [p.line for p in report.quarantined] == [4]
    states = [bytes(s) for (s,) in conn.execute(f"SELECT state FROM {EVENTS_TABLE}")]
    assert not [s for s in states if b"PAT-CLEAR-77" in s]
    digests = quarantine.logged_digests(conn, report.batch_id)
    (row,) = quarantine.show(conn, report.batch_id, digests)
    assert row.line == 4 and "PAT-CLEAR-77" in row.text and row.digest_ok
    # A digest that does not match the log is reported, not hidden.
    (other,) = quarantine.show(conn, report.batch_id, {4: "0" * 64})
    assert not other.digest_ok
    # Sealed bytes altered, or moved to another line, no longer decrypt.
    conn.execute("UPDATE claims_quarantine SET line = 5")
    with pytest.raises(quarantine.QuarantineError, match="altered"):
        quarantine.show(conn, report.batch_id, digests)
    # Shredding the batch's key erases the text for good; the log keeps line and reason.
    assert quarantine.shred(conn, report.batch_id)
    with pytest.raises(quarantine.QuarantineError, match="shredded"):
        quarantine.show(conn, report.batch_id, digests)
    assert quarantine.logged_digests(conn, report.batch_id) == digests


def test_a_dry_run_seals_nothing(conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> None:
    ingest_file(conn, _bad_file(tmp_path), pseudo, dry_run=True)
    assert conn.execute("SELECT count(*) FROM claims_quarantine").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM claims_batch_keys").fetchone()[0] == 0


def test_the_app_cannot_shred_and_the_reader_cannot_read(
        roles: tuple[Connection, Connection], pseudo: Pseudonymiser,  # noqa: F811
        tmp_path: Path) -> None:
    app, reader = roles
    with app.connect() as c:
        report = ingest_file(c, _bad_file(tmp_path), pseudo)
        assert quarantine.show(c, report.batch_id, quarantine.logged_digests(c, report.batch_id))
        with pytest.raises(DENIED):
            quarantine.shred(c, report.batch_id)
    with reader.connect() as c:
        for table in ("claims_batch_keys", "claims_quarantine"):
            with pytest.raises(DENIED):
                c.execute(f"SELECT * FROM {table}")
