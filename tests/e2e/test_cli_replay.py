"""`claims replay --as-of`: a correction recorded later does not change an earlier replay."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from ledger.vocabulary import PARIS
from tests.csvdata import encounter, encounters_csv


def replay(runner: CliRunner, *extra: str) -> dict[str, object]:
    result = runner.invoke(app, ["replay", "--rules", "historical", "--format", "json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_as_of_before_a_correction_is_unchanged(cli_env: Path, runner: CliRunner) -> None:
    first = encounters_csv(cli_env / "a.csv", [
        encounter("E-1", regulation_origin="SOS"), encounter("E-2", regulation_origin="SOS")])
    assert runner.invoke(app, ["ingest", str(first)]).exit_code == 0
    time.sleep(0.05)
    between = datetime.now(tz=PARIS).isoformat(timespec="microseconds")
    before = replay(runner)
    time.sleep(0.05)
    # Later the export says E-1 was regulated by the SAS: it becomes SNP-eligible.
    fix = encounters_csv(cli_env / "b.csv", [encounter("E-1", regulation_origin="SAS")])
    assert runner.invoke(app, ["ingest", str(fix)]).exit_code == 0
    after = replay(runner)
    as_of = replay(runner, "--as-of", between)
    assert as_of["totals"] == before["totals"]
    assert after["totals"]["total"] != before["totals"]["total"]  # type: ignore[index]
    assert as_of["as_of"] is not None


def test_as_of_before_anything_is_empty(cli_env: Path, runner: CliRunner) -> None:
    path = encounters_csv(cli_env / "a.csv", [encounter("E-1")])
    assert runner.invoke(app, ["ingest", str(path)]).exit_code == 0
    data = replay(runner, "--as-of", "2000-01-01")
    assert data["rows"] == [] and data["totals"] == {"encounters": 0, "total": "0.00"}
    said = runner.invoke(app, ["replay", "--rules", "historical", "--as-of", "2000-01-01"])
    assert "the ledger knew no encounter yet" in said.stderr  # not an empty table and no word
