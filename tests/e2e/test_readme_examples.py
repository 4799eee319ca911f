"""The README's examples run on what ``claims synth`` writes: the encounter ``explain`` names
exists, and the ``--as-of`` example shows the corrections recorded between two ingests."""

from __future__ import annotations

import json
import shlex
import time
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from ledger.vocabulary import PARIS
from tests.unit.test_readme import EXAMPLES, README, claims_lines


def _synth_and_ingest(runner: CliRunner, out: Path, *files: str) -> None:
    # The README's year of 8 associations, cut to January and 2 associations for the test.
    made = runner.invoke(app, ["synth", str(out), "--associations", "2", "--start",
                               "2023-01-01", "--end", "2023-01-31"])
    assert made.exit_code == 0, made.output
    ingested = runner.invoke(app, ["ingest", *(str(out / f) for f in files)])
    assert ingested.exit_code == 0, ingested.output


def _example(prefix: str, lines: list[str] = EXAMPLES) -> list[str]:
    """The words after ``claims`` of the first example starting with ``prefix``."""
    found = [line for line in lines if line.startswith(prefix)]
    assert found, f"no README example starts with {prefix!r}"
    return shlex.split(found[0], comments=True)[1:]


def test_the_explain_example_finds_its_encounter(cli_env: Path, runner: CliRunner) -> None:
    _synth_and_ingest(runner, cli_env / "out", "encounters.csv", "decisions.csv")
    args = _example("claims explain")
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["encounter"] == args[1]
    assert set(data["rule_sets"]) == {"historical", "parity"}


@pytest.mark.timeout(600)
def test_the_as_of_example_shows_the_corrections(cli_env: Path, runner: CliRunner) -> None:
    out = cli_env / "out"
    _synth_and_ingest(runner, out, "encounters.csv", "decisions.csv")
    time.sleep(0.05)
    before = datetime.now(PARIS).isoformat()
    time.sleep(0.05)
    block = [shlex.split(line, comments=True)[1:] for line in
             claims_lines(README.read_text(encoding="utf-8").split("### Two times", 1)[1])]
    ingest = next(a for a in block if a[0] == "ingest")
    assert runner.invoke(app, ["ingest", str(out / Path(ingest[1]).name)]).exit_code == 0
    replays = [a for a in block if a[0] == "replay"]
    then = next([before if w == "$BEFORE" else w for w in a] for a in replays if "--as-of" in a)
    now = next(a for a in replays if "--as-of" not in a)
    known_then = runner.invoke(app, [*then, "--format", "json"])
    known_now = runner.invoke(app, [*now, "--format", "json"])
    assert known_then.exit_code == known_now.exit_code == 0, known_then.output
    totals_then = json.loads(known_then.stdout)["totals"]
    totals_now = json.loads(known_now.stdout)["totals"]
    assert totals_now["encounters"] < totals_then["encounters"]        # voids recorded since
    nothing = runner.invoke(app, ["replay", "--rules", "historical", "--as-of", "2024-01-31"])
    assert nothing.exit_code == 0
    assert "the ledger knew no encounter yet" in nothing.stderr
