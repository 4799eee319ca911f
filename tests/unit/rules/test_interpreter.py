"""Interpreter: the weekly cap, explanations (reasons, references) and their JSON form."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from cli.rules_cmd import app
from projections.facts import EncounterFacts
from projections.rules.interpreter import explain, explain_many, explanation_as_json
from projections.rules.loader import DATA_DIR, load_rule_set
from tests.unit.rules.support import batch_amounts, fact

HISTORICAL = load_rule_set("historical")
PARITY = load_rule_set("parity")


def week(n: int, doctor: str = "10000000001", origin: str = "SAS") -> list[EncounterFacts]:
    """``n`` SNP-eligible consultations from Monday 11 to Friday 15 September 2023 (2023-W37)."""
    return [fact(f"{doctor}-{origin}-{i:02d}", performed=f"2023-09-{11 + i % 5} {9 + i // 5:02d}:00",
                 regulated=f"2023-09-{11 + i % 5} 08:30", origin=origin, doctor=doctor)
            for i in range(n)]


def test_weekly_cap_grants_the_first_20_by_time() -> None:
    facts = week(21)
    explained = explain_many(HISTORICAL, facts)
    ordered = sorted(facts, key=lambda f: f.performed_at)
    with_snp = [f.encounter_id for f in ordered
                if any(line.code == "SNP" for line in explained[f.encounter_id].lines)]
    assert with_snp == [f.encounter_id for f in ordered[:20]]
    last = explained[ordered[20].encounter_id]
    assert last.amount == Decimal("25.00")
    assert ("SNP (snp): weekly cap reached (21st SNP of doctor 10000000001 in week 2023-W37, "
            "cap 20)") in [str(n) for n in last.not_applied]
    assert batch_amounts(HISTORICAL, facts) == {k: v.amount for k, v in explained.items()}


def test_cap_is_per_doctor_and_week_and_counts_only_eligible() -> None:
    facts = week(20) + week(5, doctor="10000000002") + week(3, origin="SOS")
    facts.append(fact("next-monday", performed="2023-09-18 10:00", regulated="2023-09-18 09:00"))
    explained = explain_many(HISTORICAL, facts)
    assert all(explained[f.encounter_id].amount == Decimal("40.00") for f in facts
               if f.regulation_origin == "SAS")
    # Under parity the three SOS acts become eligible and push three SAS acts over the cap.
    parity = explain_many(PARITY, facts)
    capped = [k for k, e in parity.items() if any("weekly cap" in str(n) for n in e.not_applied)]
    assert len(capped) == 3
    assert batch_amounts(PARITY, facts) == {k: v.amount for k, v in parity.items()}


def test_ties_on_time_are_ordered_by_encounter_ref() -> None:
    facts = [fact(f"x{i}", performed="2023-09-12 10:00", regulated="2023-09-12 09:00",
                  ref=f"R{20 - i:02d}") for i in range(21)]
    explained = explain_many(HISTORICAL, facts)
    refused = [k for k, e in explained.items() if e.amount == Decimal("25.00")]
    assert refused == ["x0"]  # encounter_ref R20 is the last in order


def test_explanation_lines_carry_value_date_reference_and_rule() -> None:
    e = explain(HISTORICAL, fact("a", performed="2023-11-02 10:30", regulated="2023-11-02 09:00"))
    by_code = {line.code: line for line in e.lines}
    assert e.amount == Decimal("41.50")
    g = by_code["G"]
    assert (g.amount, g.value_date.isoformat(), g.rule) == (Decimal("26.50"), "2023-11-01",
                                                           "consultation")
    assert g.reference.href.startswith("https://")
    snp = by_code["SNP"]
    assert snp.value_date.isoformat() == "2023-05-15" and "JORFTEXT000047542123" in snp.reference.href
    data = explanation_as_json(e)
    assert data["amount"] == "41.50" and data["lines"][0]["reference"]
    assert "MD (visit_travel): act consultation not in [visit]" in data["not_applied"]


def test_reasons_name_the_failing_condition() -> None:
    reasons = {
        "origin SOS not in [SAS, C15]": fact("a", origin="SOS"),
        "is in PDSA hours": fact("b", performed="2023-09-12 20:00", regulated="2023-09-12 19:00"),
        "exceeds 48h00m00s": fact("c", regulated="2023-09-10 10:00"),
        "not in force on 2022-07-12": fact("d", performed="2022-07-12 10:00",
                                           regulated="2022-07-12 09:00"),
        "the doctor is the patient's treating doctor": fact("e", treating=True),
    }
    for fragment, f in reasons.items():
        snp = [str(n) for n in explain(HISTORICAL, f).not_applied if n.code == "SNP"]
        assert snp and fragment in snp[0], (fragment, snp)
    visit = explain(HISTORICAL, fact("v", act="visit", origin="SOS", pdsa=True,
                                      performed="2023-09-12 22:00", regulated="2023-09-12 21:30"))
    assert any("excluded by pdsa_visit_night (VRN)" in str(n) for n in visit.not_applied)


def test_cli_list_show_check(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0 and "historical" in listed.output and "parity" in listed.output
    shown = runner.invoke(app, ["show", "historical", "--on", "2023-11-01"])
    assert shown.exit_code == 0 and "26.50" in shown.output and "https://" in shown.output
    assert runner.invoke(app, ["check", str(DATA_DIR)]).exit_code == 0
    bad = tmp_path / "G.yaml"
    bad.write_text("description: x\nmetadata: {unit: EUR, reference: {}}\n"
                   "values:\n  2017-05-01: {value: 25.00}\n", encoding="utf-8")
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:4: value 25.0" in result.output
    assert runner.invoke(app, ["show", "nope"]).exit_code == 2
