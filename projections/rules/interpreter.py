"""The interpreter: what a rule set grants for each encounter, and why, in plain Python.

For each encounter and rule: find the rule's version in force on the act's Paris date, test its
conditions in file order (the first failure is the reason it did not fire), drop rules excluded
by a higher-priority rule of their exclusivity group, apply the weekly caps across the given
encounters (the first N by ``(performed_at, encounter_ref, encounter_id)`` per doctor and ISO week
of the Paris date), and price each remaining rule with its parameter's value on that date.

The batch evaluator (``batch``) compiles the same steps into SQL; property tests check they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ledger.vocabulary import CENT
from projections.facts import EncounterFacts
from projections.rules.calendar import Moment, moment
from projections.rules.conditions import first_failure
from projections.rules.model import Reference, Rule, RuleSet


@dataclass(frozen=True, slots=True)
class Line:
    """One parameter granted to an encounter."""

    code: str
    amount: Decimal
    value: Decimal
    value_date: date  # when the parameter's value took effect
    reference: Reference
    rule: str
    why: str
    confirmed: bool = True

    @property
    def parameter(self) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class NotApplied:
    """A rule that did not grant its parameter, and why."""

    rule: str
    code: str
    reason: str

    def __str__(self) -> str:
        return f"{self.code} ({self.rule}): {self.reason}"


@dataclass
class Explanation:
    """What one encounter is paid under a rule set, line by line, and what was not granted."""

    encounter_id: str
    amount: Decimal
    lines: list[Line] = field(default_factory=list)
    not_applied: list[NotApplied] = field(default_factory=list)


def explain_many(rule_set: RuleSet, facts: Sequence[EncounterFacts]) -> dict[str, Explanation]:
    """Explain every encounter; weekly caps are resolved among the given encounters.

    Args:
        rule_set: the resolved rule set.
        facts: the encounters; for caps to be right, pass each doctor's whole ISO week.

    Returns:
        An ``Explanation`` per ``encounter_id``.
    """
    moments = {f.encounter_id: moment(f.performed_local, rule_set.options) for f in facts}
    granted: dict[str, dict[str, Rule]] = {}
    refused: dict[str, list[NotApplied]] = {}
    for f in facts:
        granted[f.encounter_id], refused[f.encounter_id] = _eligible(rule_set, f,
                                                                    moments[f.encounter_id])
    _apply_caps(rule_set, facts, moments, granted, refused)
    out: dict[str, Explanation] = {}
    for f in facts:
        day = moments[f.encounter_id].day
        lines: list[Line] = []
        for rule in granted[f.encounter_id].values():
            entry = rule_set.parameters[rule.code].entry_at(day)
            if entry is None or entry.value is None:
                refused[f.encounter_id].append(
                    NotApplied(rule.id, rule.code, f"parameter {rule.code} has no value on {day}"))
                continue
            amount = entry.value.quantize(CENT)
            lines.append(Line(rule.code, amount, entry.value, entry.effective_from,
                              entry.reference, rule.id, rule.why, entry.confirmed))
        total = sum((line.amount for line in lines), Decimal("0.00")).quantize(CENT)
        out[f.encounter_id] = Explanation(f.encounter_id, total, lines, refused[f.encounter_id])
    return out


def explain(rule_set: RuleSet, facts: EncounterFacts,
            week: Sequence[EncounterFacts] = ()) -> Explanation:
    """Explain one encounter (``week``: the doctor's other encounters, for the caps)."""
    others = [f for f in week if f.encounter_id != facts.encounter_id]
    return explain_many(rule_set, [facts, *others])[facts.encounter_id]


def _eligible(rule_set: RuleSet, f: EncounterFacts, m: Moment,
              ) -> tuple[dict[str, Rule], list[NotApplied]]:
    """Rules whose conditions hold (after exclusivity), and the others with their reason."""
    eligible: dict[str, Rule] = {}
    refused: list[NotApplied] = []
    for rid in rule_set.rule_ids():
        versions = [r for r in rule_set.rules if r.id == rid]
        rule = next((r for r in versions if r.in_force(m.day)), None)
        if rule is None:
            periods = ", ".join(r.period_text() for r in versions)
            refused.append(NotApplied(rid, versions[0].code,
                                      f"not in force on {m.day} (periods: {periods})"))
            continue
        reason = first_failure(rule.conditions, f, m)
        if reason is None:
            eligible[rid] = rule
        else:
            refused.append(NotApplied(rid, rule.code, reason))
    for group in rule_set.groups:
        winner = next((rid for rid in group.rules if rid in eligible), None)
        for rid in group.rules:
            if winner is not None and rid != winner and rid in eligible:
                loser = eligible.pop(rid)
                refused.append(NotApplied(rid, loser.code, f"excluded by {winner} "
                                          f"({rule_set_code(rule_set, winner)}) in group {group.id}"))
    return eligible, refused


def rule_set_code(rule_set: RuleSet, rule_id: str) -> str:
    """The parameter code a rule id grants (its first version's)."""
    return next(r.code for r in rule_set.rules if r.id == rule_id)


def _apply_caps(rule_set: RuleSet, facts: Sequence[EncounterFacts], moments: dict[str, Moment],
                granted: dict[str, dict[str, Rule]], refused: dict[str, list[NotApplied]]) -> None:
    capped: dict[str, int] = {}
    for r in rule_set.rules:
        if r.weekly_cap is not None:
            capped[r.id] = r.weekly_cap
    order = sorted(facts, key=lambda f: (f.performed_at, f.encounter_ref, f.encounter_id))
    for rid, cap in capped.items():
        counts: dict[tuple[str, date], int] = {}
        for f in order:
            rule = granted[f.encounter_id].get(rid)
            if rule is None:
                continue
            day = moments[f.encounter_id].day
            key = (f.doctor_rpps, day - timedelta(days=day.weekday()))
            counts[key] = rank = counts.get(key, 0) + 1
            if rank > cap:
                del granted[f.encounter_id][rid]
                year, week, _ = day.isocalendar()
                refused[f.encounter_id].append(NotApplied(
                    rid, rule.code, f"weekly cap reached ({_ordinal(rank)} {rule.code} of doctor "
                                    f"{f.doctor_rpps} in week {year}-W{week:02d}, cap {cap})"))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def explanation_as_json(explanation: Explanation) -> dict[str, Any]:
    """An explanation as plain JSON values (money and dates as strings).

    Args:
        explanation: from ``explain_many``.

    Returns:
        ``{"amount", "lines": [{code, amount, value, value_date, reference, reference_title,
        reference_href, rule, why, confirmed}], "not_applied": [text]}``.
    """
    return {
        "encounter_id": explanation.encounter_id,
        "amount": str(explanation.amount),
        "lines": [{"code": line.code, "amount": str(line.amount), "value": str(line.value),
                   "value_date": line.value_date.isoformat(), "reference": str(line.reference),
                   "reference_title": line.reference.title, "reference_href": line.reference.href,
                   "rule": line.rule, "why": line.why, "confirmed": line.confirmed}
                  for line in explanation.lines],
        "not_applied": [str(item) for item in explanation.not_applied],
    }
