"""What the read commands say about their options and their output (issue 25, items 10-11).

``--out`` is honoured by every format; a period that ends before it starts, an unknown
association, an ``--as-of`` in the future or before anything was recorded are said, never an
empty table with exit 0 and no word; CSV cells are never formulas.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from projections.compare import CompareResult
from projections.reconcile import Reconciliation
from tests.csvdata import decisions_csv, encounter, encounters_csv

EVIL = "=cmd|' /C calc'!A0"
COMMON = {"regulated_at": "12/09/2023 09:00", "performed_at": "12/09/2023 10:30"}


def _ledger(cli_env: Path, runner: CliRunner) -> None:
    """SOS-75: E-1 (SAS, SNP billed and refused: underpaid under historical), E-2 (SOS)."""
    enc = encounters_csv(cli_env / "e.csv", [
        encounter("E-1", regulation_origin="SAS", billed_codes="G+SNP", billed_amount="40,00",
                  **COMMON),
        encounter("E-2", regulation_origin="SOS", **COMMON)])
    dec = decisions_csv(cli_env / "d.csv", [
        {"association": "SOS-75", "encounter_ref": "E-1", "decided_at": "2023-10-01",
         "paid_amount": "25,00", "paid_codes": "G", "rejected_codes": "SNP", "reason": "R"}])
    result = runner.invoke(app, ["ingest", str(enc), str(dec)])
    assert result.exit_code == 0, result.output


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=";"))


# --- item 10: CSV injection, through the CLI ------------------------------------------------

def test_compare_and_replay_csv_escape_an_injected_association(
        cli_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    def crafted(parquet: Path, base: Any, alt: Any, by: tuple[str, ...], **kw: Any
                ) -> CompareResult:
        row = {"association": EVIL, "encounters": 1, "base_total": Decimal("25.00"),
               "alt_total": Decimal("40.00"), "difference": Decimal("15.00")}
        totals = {k: v for k, v in row.items() if k != "association"}
        return CompareResult(base.name, alt.name, None, ("association",), [row], totals)

    monkeypatch.setattr("cli.compare_cmd.compare", crafted)
    result = runner.invoke(app, ["compare", "historical", "parity", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert _rows(result.stdout)[1] == ["'" + EVIL, "1", "25.00", "40.00", "15.00"]
    result = runner.invoke(app, ["replay", "--rules", "historical", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert _rows(result.stdout) == [["association", "encounters", "total"],
                                    ["'" + EVIL, "1", "25.00"]]


def test_reconcile_csv_escapes_an_injected_reason(
        cli_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    _ledger(cli_env, runner)
    finding = {"association": "SOS-75", "encounter_ref": "E-1", "act_day": date(2023, 9, 12),
               "expected": Decimal("40.00"), "paid": Decimal("25.00"),
               "shortfall": Decimal("15.00"), "decided_at": date(2023, 10, 1),
               "rejected_codes": "SNP", "reason": "@SUM(A1:A9)"}
    totals = {"encounters": 2, "decided": 1, "underpaid": 1}

    def crafted(*args: Any, **kw: Any) -> Reconciliation:
        return Reconciliation("historical", [finding], [], totals)

    monkeypatch.setattr("cli.reconcile_cmd.reconcile", crafted)
    result = runner.invoke(app, ["reconcile", "--format", "csv"])
    assert result.exit_code == 1, result.output  # findings
    assert _rows(result.stdout)[1][-1] == "'@SUM(A1:A9)"


# --- item 11: --out ------------------------------------------------------------------------

def test_out_is_written_for_every_format(cli_env: Path, runner: CliRunner) -> None:
    _ledger(cli_env, runner)
    target = cli_env / "f.csv"
    result = runner.invoke(app, ["compare", "historical", "parity", "--format", "csv",
                                 "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote {target}" in result.stderr
    assert _rows(target.read_text(encoding="utf-8")) == [
        ["association", "encounters", "base_total", "alt_total", "difference"],
        ["SOS-75", "2", "65.00", "80.00", "15.00"]]
    as_json = cli_env / "f.json"
    assert runner.invoke(app, ["compare", "historical", "parity", "--format", "json",
                               "--out", str(as_json)]).exit_code == 0
    assert json.loads(as_json.read_text(encoding="utf-8"))["totals"]["encounters"] == 2
    replayed = cli_env / "r.csv"
    result = runner.invoke(app, ["replay", "--rules", "historical", "--format", "csv",
                                 "--out", str(replayed)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert _rows(replayed.read_text(encoding="utf-8")) == [
        ["association", "encounters", "total"], ["SOS-75", "2", "65.00"]]
    found = cli_env / "u.csv"
    result = runner.invoke(app, ["reconcile", "--format", "csv", "--out", str(found)])
    assert result.exit_code == 1 and result.stdout == ""
    assert [r[:6] for r in _rows(found.read_text(encoding="utf-8"))[1:]] == [
        ["SOS-75", "E-1", "2023-09-12", "40.00", "25.00", "15.00"]]


@pytest.mark.parametrize("option", ["--out", "--chart", "--html"])
def test_an_output_in_a_missing_folder_is_a_usage_error(
        cli_env: Path, runner: CliRunner, option: str) -> None:
    result = runner.invoke(app, ["compare", "historical", "parity", "--format", "csv",
                                 option, str(cli_env / "nowhere" / "f.out")])
    assert result.exit_code == 2
    assert option in result.output and "does not exist" in result.output


def test_replay_refuses_a_format_it_cannot_write(cli_env: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["replay", "--rules", "historical", "--format", "parquet"])
    assert result.exit_code == 2


# --- item 11: periods, associations, as-of -------------------------------------------------

@pytest.mark.parametrize("command", [["compare", "historical", "parity"],
                                     ["replay", "--rules", "historical"],
                                     ["reconcile"]])
def test_from_after_to_is_refused(cli_env: Path, runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--from", "2023-12-31", "--to", "2023-01-01"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "--from 2023-12-31 is after --to 2023-01-01" in result.stderr


def test_reconcile_unknown_association_is_refused(cli_env: Path, runner: CliRunner) -> None:
    _ledger(cli_env, runner)
    result = runner.invoke(app, ["reconcile", "--association", "SOS-99"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no association 'SOS-99' in the ledger (it has SOS-75)" in result.stderr
    # The code is read as the ingest reads it: upper-cased.
    result = runner.invoke(app, ["reconcile", "--association", "sos-75", "--json"])
    assert result.exit_code == 1  # findings
    assert json.loads(result.stdout)["totals"]["encounters"] == 2


def test_reconcile_negative_limit_is_a_usage_error(cli_env: Path, runner: CliRunner) -> None:
    assert runner.invoke(app, ["reconcile", "--limit", "-1"]).exit_code == 2


@pytest.mark.parametrize("command", [["compare", "historical", "parity", "--format", "json"],
                                     ["replay", "--rules", "historical", "--format", "json"],
                                     ["reconcile", "--json"]])
def test_as_of_in_the_future_warns_and_uses_the_facts_known_now(
        cli_env: Path, runner: CliRunner, command: list[str]) -> None:
    _ledger(cli_env, runner)
    now = runner.invoke(app, command)
    later = runner.invoke(app, [*command, "--as-of", "2099-01-01"])
    assert later.exit_code == now.exit_code
    assert "warning: --as-of 2099-01-01 00:00:00 Paris is in the future" in later.stderr
    assert "facts as known now" in later.stderr
    assert json.loads(later.stdout)["totals"] == json.loads(now.stdout)["totals"]


@pytest.mark.parametrize("command", [["compare", "historical", "parity"],
                                     ["replay", "--rules", "historical"],
                                     ["reconcile"]])
def test_as_of_before_the_ingest_says_why_nothing_is_shown(
        cli_env: Path, runner: CliRunner, command: list[str]) -> None:
    _ledger(cli_env, runner)
    result = runner.invoke(app, [*command, "--as-of", "2024-01-31"])
    assert result.exit_code == 0, result.output
    assert "at --as-of 2024-01-31 00:00:00 Paris the ledger knew no encounter yet" in result.stderr
    assert "--as-of is the recorded time" in result.stderr


def test_a_period_without_acts_says_where_the_acts_are(cli_env: Path, runner: CliRunner) -> None:
    _ledger(cli_env, runner)
    result = runner.invoke(app, ["compare", "historical", "parity", "--from", "2024-01-01"])
    assert result.exit_code == 0, result.output
    assert ("no act of the ledger from 2024-01-01 to the end; its acts run from 2023-09-12 to "
            "2023-09-12") in result.stderr
    empty = runner.invoke(app, ["reconcile", "--association", "SOS-75", "--to", "2022-12-31"])
    assert empty.exit_code == 0, empty.output
    assert "no act of association SOS-75 from the start to 2022-12-31" in empty.stderr


def test_an_empty_ledger_says_so(cli_env: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["replay", "--rules", "historical"])
    assert result.exit_code == 0, result.output
    assert "the ledger holds no encounters" in result.stderr
