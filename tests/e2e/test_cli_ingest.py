"""The CLI on CSV files, end to end, on a real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.csvdata import encounter, encounters_csv


def test_ingest_twice_second_run_reports_zero_new_events(cli_env: Path, runner: CliRunner) -> None:
    path = encounters_csv(cli_env / "e.csv", [encounter("E-1"), encounter("E-2")])
    first = runner.invoke(app, ["ingest", str(path)])
    assert first.exit_code == 0, first.output
    assert "4 new events" in first.output
    second = runner.invoke(app, ["ingest", "--json", str(path)])
    assert second.exit_code == 0
    report = json.loads(second.output)["files"][0]
    assert report["new_events"] == 0 and report["already_ingested"] is True


def test_bad_rows_exit_1_with_file_line_and_reason(cli_env: Path, runner: CliRunner) -> None:
    path = encounters_csv(cli_env / "bad.csv", [
        encounter("E-1"), encounter("E-2", performed_at="2023-02-30 10:00"),
        encounter("E-3", regulation_origin="XYZ", patient_ref="PAT-CLEAR-99"),
    ])
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3: [performed_at]" in result.output
    assert f"{path}:4: [regulation_origin] unknown value; expected one of" in result.output
    assert "PAT-CLEAR-99" not in result.output and "XYZ" not in result.output  # no cell shown
    as_json = runner.invoke(app, ["ingest", "--json", str(path)])
    data = json.loads(as_json.output)
    assert as_json.exit_code == 1
    assert [(q["line"], q["column"]) for q in data["files"][0]["quarantined"]] == [
        (3, "performed_at"), (4, "regulation_origin")]
    assert all(q["raw"] is None for q in data["files"][0]["quarantined"])
    assert "PAT-CLEAR-99" not in as_json.output
    # The key holder reads the rows back, as they came.
    shown = runner.invoke(app, ["quarantine", "show", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "3: SOS-75;E-2;" in shown.output and "PAT-CLEAR-99" in shown.output


def test_unreadable_file_is_an_error_with_its_name(cli_env: Path, runner: CliRunner) -> None:
    path = cli_env / "utf16.csv"
    path.write_bytes("association;encounter_ref\n".encode("utf-16"))
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 1
    assert f"{path}:1:" in result.output and "neither UTF-8 nor Windows-1252" in result.output


def test_missing_key_is_a_usage_error(cli_env: Path, runner: CliRunner,
                                      monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.delenv("CLAIMS_PSEUDONYM_KEY")
    path = encounters_csv(cli_env / "e.csv", [encounter("E-1")])
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 2 and "CLAIMS_PSEUDONYM_KEY" in result.output


def test_help_teaches(runner: CliRunner) -> None:
    result = runner.invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    assert "quarantined" in result.output and "CLAIMS_PSEUDONYM_KEY" in result.output
