"""The domain's decision of which event a row gives (no database)."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.decide import Known, Outcome, decision_block, decision_row, encounter_row

FACTS = json.dumps({"association": "SOS-75", "encounter_ref": "E-1", "act": "visit",
                    "billed_amount": "25.00"})
OTHER = json.dumps({"association": "SOS-75", "encounter_ref": "E-1", "act": "consultation",
                    "billed_amount": "30.00"})


def test_a_new_encounter_is_recorded_at_version_1() -> None:
    step = encounter_row(Known(), FACTS, "a" * 64, void=False)
    assert step.outcome is Outcome.RECORDED
    assert step.known == Known(1, FACTS, "a" * 64)


def test_the_same_facts_again_are_unchanged() -> None:
    known = Known(1, FACTS, "a" * 64)
    step = encounter_row(known, FACTS, "a" * 64, void=False)
    assert step.outcome is Outcome.UNCHANGED and step.known is known


def test_other_facts_are_a_correction_naming_what_changed() -> None:
    step = encounter_row(Known(1, FACTS, "a" * 64), OTHER, "b" * 64, void=False)
    assert step.outcome is Outcome.CORRECTED
    assert step.changed == ("act", "billed_amount")
    assert step.known == Known(2, OTHER, "b" * 64)


def test_a_void_then_the_same_facts_again_restores_the_encounter() -> None:
    voided = encounter_row(Known(3, FACTS, "a" * 64), FACTS, "a" * 64, void=True)
    assert voided.outcome is Outcome.VOIDED and voided.known.version == 4 and voided.known.voided
    assert encounter_row(voided.known, "", "", void=True).outcome is Outcome.UNCHANGED
    back = encounter_row(voided.known, FACTS, "a" * 64, void=False)
    assert back.outcome is Outcome.CORRECTED and back.changed == ("status",)
    assert back.known == Known(5, FACTS, "a" * 64)


def test_a_void_of_an_unknown_encounter_is_unknown() -> None:
    step = encounter_row(Known(), FACTS, "a" * 64, void=True)
    assert step.outcome is Outcome.UNKNOWN and step.known == Known()


def test_decisions() -> None:
    assert decision_row(Known(), "d" * 64).outcome is Outcome.UNKNOWN
    first = decision_row(Known(1, FACTS, "a" * 64), "d" * 64)
    assert first.outcome is Outcome.DECIDED and first.known.version == 2
    assert decision_row(first.known, "d" * 64).outcome is Outcome.UNCHANGED
    second = decision_row(first.known, "e" * 64)
    assert second.known.version == 3 and second.known.decisions == {"d" * 64, "e" * 64}


shas = st.sampled_from(["a", "b", "c"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.frozensets(shas), shas), max_size=20))
def test_a_block_of_decisions_decides_as_row_by_row(
        rows: list[tuple[int, frozenset[str], str]]) -> None:
    versions = np.array([v for v, _, _ in rows], dtype=np.int64)
    decided, unknown = decision_block(versions, [seen for _, seen, _ in rows],
                                      [sha for _, _, sha in rows])
    for i, (version, seen, sha) in enumerate(rows):
        outcome = decision_row(Known(version, decisions=seen), sha).outcome
        assert decided[i] == (outcome is Outcome.DECIDED)
        assert unknown[i] == (outcome is Outcome.UNKNOWN)
