"""No clear patient identifier leaves an ingest, whatever the rows look like.

Shifted and broken rows put a patient identifier in any cell. After ingesting fuzzed exports
through the CLI, none appears in the event log, the CLI's output (human or JSON), the files
under CLAIMS_HOME or an audit bundle; and every quarantined row's text comes back, as it came,
for the key holder (``claims quarantine show``).
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from cli.main import app
from ledger.application import EVENTS_TABLE
from ledger.synth import generate
from tests.integration.test_ingest_fuzz import fuzzed

#: Synthetic patient identifiers look like ``P-75-10813``; nothing else the ledger writes does.
CLEAR_ID = re.compile(rb"P-\d+-\d+")
SWAP = frozenset({"swap_fields"})


def _found_in_files(folder: Path) -> set[bytes]:
    found: set[bytes] = set()
    for path in folder.rglob("*"):
        if path.is_file():
            found |= set(CLEAR_ID.findall(path.read_bytes()))
    return found


def test_fuzzed_exports_leave_no_clear_identifier_and_lose_no_text(
        cli_env: Path, runner: CliRunner) -> None:
    data = generate(cli_env / "synth", associations=2, start=date(2023, 1, 1),
                    end=date(2023, 3, 31), encounters=1500, seed=23)
    encounters = cli_env / "encounters.csv"
    # Every mutation that shifts, breaks or spoils cells; not a swap of two whole cells, which
    # can make another valid row (a patient id where the association code goes) that no ledger
    # could tell from a real one.
    mutated = fuzzed(data.encounters_path, encounters, seed=5, avoid=SWAP)
    decisions = cli_env / "decisions.csv"
    fuzzed(data.decisions_path, decisions, seed=6, avoid=SWAP)
    assert len(mutated) > 500

    outputs = []
    for args in (["ingest", str(encounters), str(decisions)],
                 ["ingest", "--json", str(encounters), str(decisions)],
                 ["audit", "extract", "--association", "SOS-75", "--from", "2023-01-01",
                  "--to", "2023-03-31", "--out", str(cli_env / "bundle")]):
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 1), result.output
        outputs.append(result.output.encode())
    report = json.loads(outputs[1])["files"][0]
    quarantined = {q["line"] for q in report["quarantined"]}
    assert quarantined and quarantined <= mutated

    for output in outputs:
        assert not CLEAR_ID.findall(output)
    assert not _found_in_files(cli_env / "home")
    assert (cli_env / "bundle" / "manifest.json").is_file()  # the extract was made
    assert not _found_in_files(cli_env / "bundle")
    with psycopg.connect(os.environ["CLAIMS_DATABASE_URL"]) as conn:
        states = conn.execute(f"SELECT state FROM {EVENTS_TABLE}").fetchall()
    assert not [s for (s,) in states if CLEAR_ID.search(bytes(s))]

    # The key holder gets every quarantined row's text back, as it came, identifiers included.
    shown = runner.invoke(app, ["quarantine", "show", "--json", str(encounters)])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)
    texts = {row["line"]: row["text"] for row in rows}
    assert set(texts) == quarantined and all(row["digest_ok"] for row in rows)
    lines = encounters.read_bytes().split(b"\n")
    exact = 0
    for line, text in texts.items():
        original = lines[line - 1]
        if original.isascii() and not any(c in original for c in b'"\r\x00'):
            assert text.split(";") == original.decode().split(";")  # every cell, as it came
            exact += 1
    assert exact > len(texts) / 3
    assert any(CLEAR_ID.search(t.encode()) for t in texts.values())
