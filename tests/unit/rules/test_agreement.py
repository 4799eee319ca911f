"""Property: the interpreter and the DuckDB batch evaluator grant the same lines to every encounter.

Each example is a few hundred encounters packed into two ISO weeks and a few doctors, so the SNP
weekly cap is often reached; the weeks are drawn around every date where a parameter value or a
rule period changes (and at random over 2016–2026).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.vocabulary import PARIS
from projections.facts import EncounterFacts
from projections.rules.interpreter import explain_many
from projections.rules.loader import load_rule_set
from projections.rules.model import RuleSet
from tests.unit.rules.support import batch_amounts, batch_lines

RULE_SETS = {name: load_rule_set(name) for name in ("historical", "parity")}


def change_dates(rule_set: RuleSet) -> set[date]:
    """Every date where a parameter value or a rule period starts, or the day after one ends."""
    days = {e.effective_from for p in rule_set.parameters.values() for e in p.values}
    days |= {r.valid_from for r in rule_set.rules if r.valid_from}
    days |= {r.valid_until + timedelta(days=1) for r in rule_set.rules if r.valid_until}
    return days


EXTRA = {date(2022, 10, 1), date(2022, 12, 9), date(2023, 7, 14), date(2023, 10, 29),
         date(2024, 3, 31), date(2023, 11, 1), date(2024, 12, 25)}
ANCHORS = sorted(set().union(*(change_dates(rs) for rs in RULE_SETS.values())) | EXTRA)
DELAY_EDGES = [-1, 0, 1, 172799, 172800, 172801]
MINUTE_EDGES = [479, 480, 719, 720, 1199, 1200, 1260]


def encounters(starts: list[date], count: int, seed: int, busy: float) -> list[EncounterFacts]:
    """``count`` encounters of 3 doctors within a few days of ``starts`` (seeded, reproducible).

    A ``busy`` share of them are daytime, regulated, non-PDSA acts of one doctor (likely SNP
    candidates), so the weekly cap is reached; some share the previous act's exact time.

    Hypothesis draws the weeks, the count and the seed; the rows themselves come from a seeded
    generator (drawing thousands of values through Hypothesis one by one is too slow here).
    """
    rnd = random.Random(seed)
    facts: list[EncounterFacts] = []
    for i in range(count):
        is_busy = rnd.random() < busy
        day = rnd.choice(starts) + timedelta(days=rnd.randint(-3, 6))
        minute = (rnd.randint(480, 1199) if is_busy else rnd.choice(MINUTE_EDGES)
                  if rnd.random() < 0.1 else rnd.randint(0, 1439))
        local = datetime(day.year, day.month, day.day, minute // 60, minute % 60,
                         rnd.randint(0, 59))
        performed = local.replace(tzinfo=PARIS)
        if facts and rnd.random() < 0.1:
            performed = facts[-1].performed_at
        origin = rnd.choice(["SAS", "C15", "SOS"] if is_busy else
                            ["SAS", "SAS", "C15", "SOS", "SOS", "NONE"])
        delay = (rnd.randint(0, 172800) if is_busy else rnd.choice(DELAY_EDGES)
                 if rnd.random() < 0.1 else rnd.randint(-7200, 60 * 3600))
        facts.append(EncounterFacts(
            encounter_id=f"e{i}", association=rnd.choice(["SOS-75", "SOS-13"]),
            encounter_ref=f"R{rnd.randint(0, 40):03d}", regulation_origin=origin,
            regulated_at=None if origin == "NONE" else performed - timedelta(seconds=delay),
            performed_at=performed, act=rnd.choice(["consultation", "visit"]),
            doctor_rpps="10000000001" if is_busy else rnd.choice(
                ["10000000001", "10000000002", "10000000003"]),
            treating_doctor=not is_busy and rnd.random() < 0.15,
            pdsa=not is_busy and rnd.random() < 0.5,
            patient_birth_year=rnd.choice([None, rnd.randint(2010, 2025)])))
    return facts


@st.composite
def week_of_encounters(draw: Any) -> list[EncounterFacts]:
    """Encounters packed into two weeks: one around a change date, one around another or random."""
    starts = [draw(st.sampled_from(ANCHORS)),
              draw(st.one_of(st.sampled_from(ANCHORS),
                             st.dates(date(2016, 6, 1), date(2026, 6, 1))))]
    return encounters(starts, draw(st.integers(220, 300)), draw(st.integers(0, 2**32)),
                      draw(st.sampled_from([0.0, 0.2, 0.4, 0.6])))


def interpreter_lines(rule_set: RuleSet, facts: list[EncounterFacts]) -> dict[str, list[Any]]:
    explained = explain_many(rule_set, facts)
    return {eid: sorted((line.code, line.amount) for line in e.lines)
            for eid, e in explained.items()}


def test_anchors_cover_every_change_date() -> None:
    for rule_set in RULE_SETS.values():
        assert change_dates(rule_set) <= set(ANCHORS)


@pytest.mark.parametrize("name", sorted(RULE_SETS))
@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large,
                                                                 HealthCheck.large_base_example])
@given(facts=week_of_encounters())
def test_interpreter_and_batch_agree(name: str, facts: list[EncounterFacts]) -> None:
    rule_set = RULE_SETS[name]
    expected = interpreter_lines(rule_set, facts)
    assert batch_lines(rule_set, facts) == expected
    amounts = {eid: sum((a for _, a in lines), start=0) for eid, lines in expected.items()}
    assert set(amounts) == {f.encounter_id for f in facts}
    # The join-free totals query (compare's fast path) gives the same amount per encounter.
    assert batch_amounts(rule_set, facts) == amounts
