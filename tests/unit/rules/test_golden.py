"""Golden scenarios (``golden/*.yaml``): both evaluators give the expected amounts and codes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from projections.facts import EncounterFacts
from projections.rules.interpreter import explain_many
from projections.rules.loader import load_rule_set
from tests.unit.rules.support import batch_lines, fact

GOLDEN = Path(__file__).parent / "golden"
CASES = [case for path in sorted(GOLDEN.glob("*.yaml"))
         for case in yaml.safe_load(path.read_text(encoding="utf-8"))]
FACT_KEYS = {"performed", "regulated", "origin", "act", "doctor", "treating", "pdsa",
             "birth_year", "ref"}


def build(item: dict[str, Any]) -> EncounterFacts:
    kwargs = {k: v for k, v in item.items() if k != "id"}
    assert set(kwargs) <= FACT_KEYS, f"unknown keys {set(kwargs) - FACT_KEYS}"
    return fact(str(item["id"]), **kwargs)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden(case: dict[str, Any]) -> None:
    rule_set = load_rule_set(case["rule_set"])
    facts = [build(item) for item in case["facts"]]
    explained = explain_many(rule_set, facts)
    lines = batch_lines(rule_set, facts)
    for eid, want in case["expected"].items():
        got = explained[eid]
        assert got.amount == Decimal(want["amount"]), (eid, [str(n) for n in got.not_applied])
        assert sorted(line.code for line in got.lines) == sorted(want["codes"]), eid
        assert sorted(code for code, _ in lines[eid]) == sorted(want["codes"]), eid
        assert sum((a for _, a in lines[eid]), Decimal("0.00")) == Decimal(want["amount"]), eid
