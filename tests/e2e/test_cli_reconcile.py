"""`claims reconcile`: underpayments against the historical rules, on a hand-made ledger."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.csvdata import decisions_csv, encounter, encounters_csv


def test_reconcile_finds_the_refused_snp(cli_env: Path, runner: CliRunner) -> None:
    # 12/09/2023: a Tuesday; SAS-regulated consultation at 10:30, 1.5 h after regulation.
    common = {"regulated_at": "12/09/2023 09:00", "performed_at": "12/09/2023 10:30"}
    enc = encounters_csv(cli_env / "e.csv", [
        encounter("E-1", regulation_origin="SAS", billed_codes="G+SNP", billed_amount="40,00",
                  **common),
        encounter("E-2", regulation_origin="SOS", **common),
        encounter("E-3", regulation_origin="SOS", **common),
    ])
    dec = decisions_csv(cli_env / "d.csv", [
        {"association": "SOS-75", "encounter_ref": "E-1", "decided_at": "2023-10-01",
         "paid_amount": "25,00", "paid_codes": "G", "rejected_codes": "SNP",
         "reason": "RSP-471"},
        {"association": "SOS-75", "encounter_ref": "E-2", "decided_at": "2023-10-01",
         "paid_amount": "25,00", "paid_codes": "G"},
    ])
    assert runner.invoke(app, ["ingest", str(enc), str(dec)]).exit_code == 0
    result = runner.invoke(app, ["reconcile", "--rules", "historical", "--json"])
    assert result.exit_code == 1, result.output  # findings
    data = json.loads(result.output)
    assert [(f["encounter_ref"], f["expected"], f["paid"], f["shortfall"], f["rejected_codes"])
            for f in data["findings"]] == [("E-1", "40.00", "25.00", "15.00", "SNP")]
    assert data["totals"] == {"encounters": 3, "decided": 2, "underpaid": 1,
                              "expected": "65.00", "paid": "50.00", "shortfall": "15.00"}
    # Under parity the SOS encounter E-2 is underpaid too.
    parity = json.loads(runner.invoke(app, ["reconcile", "--rules", "parity", "--json"]).output)
    assert sorted(f["encounter_ref"] for f in parity["findings"]) == ["E-1", "E-2"]
