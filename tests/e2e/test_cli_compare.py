"""`claims compare` on a hand-made file: the SNP exclusion is 15 € per eligible SOS encounter."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app
from tests.csvdata import encounter, encounters_csv

# Tuesday 12 and Wednesday 13 September 2023: ordinary weekdays, outside PDSA hours by day.
DAY = "12/09/2023"


def consult(ref: str, assoc: str, doctor: str, **kw: Any) -> dict[str, Any]:
    base = {"association": assoc, "doctor_rpps": doctor, "act": "consultation",
            "regulated_at": f"{DAY} 09:00", "performed_at": f"{DAY} 10:30",
            "billed_codes": "G", "billed_amount": "26,50", "patient_ref": f"P-{ref}"}
    return encounter(ref, **{**base, **kw})


def hand_made() -> tuple[list[dict[str, Any]], dict[str, int]]:
    rows: list[dict[str, Any]] = []
    eligible = {"SOS-75": 0, "SOS-13": 0}
    for assoc, doctor, n in (("SOS-75", "10000000075", 7), ("SOS-13", "10000000013", 4)):
        for i in range(n):  # SOS-regulated, eligible but for the origin
            rows.append(consult(f"{assoc}-ok-{i}", assoc, doctor, regulation_origin="SOS"))
            eligible[assoc] += 1
        # SOS-regulated but not eligible under parity either:
        rows.append(consult(f"{assoc}-treating", assoc, doctor, regulation_origin="SOS",
                            treating_doctor="1"))
        rows.append(consult(f"{assoc}-late", assoc, doctor, regulation_origin="SOS",
                            regulated_at="09/09/2023 09:00"))            # 73.5 h after
        rows.append(consult(f"{assoc}-night", assoc, doctor, regulation_origin="SOS",
                            regulated_at=f"{DAY} 21:00", performed_at=f"{DAY} 22:00",
                            pdsa="1"))                                      # PDSA hours
        rows.append(consult(f"{assoc}-sunday", assoc, doctor, regulation_origin="SOS",
                            regulated_at="10/09/2023 10:00",
                            performed_at="10/09/2023 11:00"))              # Sunday
        # Regulated by the SAS: eligible under both rule sets, no difference.
        rows.append(consult(f"{assoc}-sas", assoc, doctor, regulation_origin="SAS"))
        rows.append(consult(f"{assoc}-walkin", assoc, doctor, regulation_origin="NONE",
                            regulated_at=""))
    return rows, eligible


def test_compare_difference_is_15_euros_per_eligible_sos_encounter(
        cli_env: Path, runner: CliRunner) -> None:
    rows, eligible = hand_made()
    path = encounters_csv(cli_env / "hand.csv", rows)
    assert runner.invoke(app, ["ingest", str(path)]).exit_code == 0
    result = runner.invoke(app, ["compare", "historical", "parity", "--by", "association",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["base"] == "historical" and data["alt"] == "parity"
    assert data["by"] == ["association"]
    by_assoc = {r["association"]: r for r in data["rows"]}
    assert set(by_assoc) == {"SOS-75", "SOS-13"}
    for assoc, n in eligible.items():
        row = by_assoc[assoc]
        assert Decimal(row["difference"]) == Decimal("15.00") * n
        assert Decimal(row["alt_total"]) - Decimal(row["base_total"]) == Decimal(row["difference"])
        assert row["encounters"] == n + 6
        assert row["difference"].count(".") == 1 and len(row["difference"].split(".")[1]) == 2
    assert Decimal(data["totals"]["difference"]) == Decimal("15.00") * sum(eligible.values())


def test_compare_by_month_and_code_and_csv(cli_env: Path, runner: CliRunner) -> None:
    rows, eligible = hand_made()
    path = encounters_csv(cli_env / "hand.csv", rows)
    assert runner.invoke(app, ["ingest", str(path)]).exit_code == 0
    by_code = json.loads(runner.invoke(app, ["compare", "historical", "parity", "--by", "code",
                                             "--format", "json"]).output)
    snp = next(r for r in by_code["rows"] if r["code"] == "SNP")
    assert Decimal(snp["difference"]) == Decimal("15.00") * sum(eligible.values())
    others = [r for r in by_code["rows"] if r["code"] != "SNP"]
    assert all(Decimal(r["difference"]) == 0 for r in others)
    months = runner.invoke(app, ["compare", "historical", "parity", "--by", "association",
                                 "--by", "month", "--format", "csv"])
    assert months.exit_code == 0
    lines = months.output.strip().splitlines()
    assert lines[0] == "association;month;encounters;base_total;alt_total;difference"
    assert any(line.startswith("SOS-75;2023-09;") and line.endswith(";105.00") for line in lines)


def test_compare_writes_parquet_chart_and_html(cli_env: Path, runner: CliRunner) -> None:
    import duckdb
    from PIL import Image, ImageStat

    rows, eligible = hand_made()
    path = encounters_csv(cli_env / "hand.csv", rows)
    assert runner.invoke(app, ["ingest", str(path)]).exit_code == 0
    out, png, page = cli_env / "c.parquet", cli_env / "c.png", cli_env / "c.html"
    result = runner.invoke(app, ["compare", "historical", "parity", "--format", "parquet",
                                 "--out", str(out), "--chart", str(png), "--html", str(page)])
    assert result.exit_code == 0, result.output
    with duckdb.connect() as duck:
        got = duck.execute(f"SELECT association, difference FROM '{out}' ORDER BY 1").fetchall()
    assert got == [("SOS-13", Decimal(15 * eligible["SOS-13"])),
                   ("SOS-75", Decimal(15 * eligible["SOS-75"]))]
    with Image.open(png) as image:
        assert image.size[0] > 800
        assert max(ImageStat.Stat(image.convert("L")).stddev) > 10  # not blank
    text = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text and "SOS-75" in text and "<table>" in text
