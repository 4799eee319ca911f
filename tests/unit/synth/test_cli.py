"""``claims synth`` writes the files and summarises them, for humans and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.synth_cmd import app

runner = CliRunner()


def test_writes_files_and_prints_a_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, [str(tmp_path), "--encounters", "2000", "--bad-rows", "5",
                                 "--associations", "2", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "2005 rows (2000 encounters, 5 bad" in result.output
    assert "SOS-75, SOS-13" in result.output
    for name in ("encounters.csv", "encounters_corrections.csv", "decisions.csv"):
        assert (tmp_path / name).exists()


def test_json_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, [str(tmp_path), "--encounters", "500", "--json",
                                 "--start", "2023-06-01", "--end", "2023-07-31"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["rows"] == 500 and payload["bad_rows"] == 0
    assert len(payload["associations"]) == 4


def test_bad_dates_are_usage_errors(tmp_path: Path) -> None:
    assert runner.invoke(app, [str(tmp_path), "--start", "2023-02-30"]).exit_code == 2
    result = runner.invoke(app, [str(tmp_path), "--start", "2023-03-01", "--end", "2023-02-01"])
    assert result.exit_code == 2


def test_help_describes_every_option() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for option in ("--associations", "--start", "--end", "--encounters", "--seed",
                   "--bad-rows", "--corrections", "--voids", "--json"):
        assert option in result.output
