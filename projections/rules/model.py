"""The resolved, immutable form of a rule set: parameters with dated values, rules, groups.

A ``RuleSet`` is what both evaluators read (``interpreter`` and ``batch``). Its canonical JSON is
the content published in the ledger (``RuleSet.Published``) and its SHA-256 is ``content_hash``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Any, NamedTuple


class Reference(NamedTuple):
    """A legal or documentary reference: a title and a URL."""

    title: str
    href: str

    def __str__(self) -> str:
        return f"{self.title} — {self.href}"


@dataclass(frozen=True, slots=True)
class ValueEntry:
    """One dated value of a parameter (``value`` None ends the parameter)."""

    effective_from: date
    value: Decimal | None
    reference: Reference
    confirmed: bool = True
    note: str | None = None


class ValueAt(NamedTuple):
    """A parameter's value in force on a day, when it took effect and why."""

    value: Decimal
    effective_from: date
    reference: Reference


@dataclass(frozen=True)
class Parameter:
    """A tariff parameter (``G``, ``SNP``…): dated values, newest last."""

    code: str
    description: str
    unit: str
    values: tuple[ValueEntry, ...]

    def entry_at(self, day: date) -> ValueEntry | None:
        """The value entry in force on ``day`` (None before the first date)."""
        found = None
        for entry in self.values:
            if entry.effective_from <= day:
                found = entry
        return found


@dataclass(frozen=True)
class Rule:
    """One dated version of a rule: grants parameter ``code`` when every condition holds.

    Versions sharing an ``id`` have disjoint periods; ``until`` is the last day included.
    """

    id: str
    code: str
    why: str
    conditions: tuple[tuple[str, Any], ...]
    valid_from: date | None = None
    valid_until: date | None = None
    weekly_cap: int | None = None
    note: str | None = None

    def in_force(self, day: date) -> bool:
        """Whether ``day`` (Paris date of the act) is within this version's period."""
        return ((self.valid_from is None or self.valid_from <= day)
                and (self.valid_until is None or day <= self.valid_until))

    def period_text(self) -> str:
        """The period as text (``2022-07-13 – 2023-05-14``, open ends as ``…``)."""
        return f"{self.valid_from or '…'} – {self.valid_until or '…'}"


@dataclass(frozen=True)
class ExclusiveGroup:
    """Rules (ids, highest priority first) of which at most one is granted per encounter."""

    id: str
    description: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    """A resolved rule set: what the evaluators read and what the ledger publishes."""

    name: str
    description: str
    parameters: dict[str, Parameter]
    rules: tuple[Rule, ...]
    groups: tuple[ExclusiveGroup, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    modifications: tuple[dict[str, Any], ...] = ()

    def value_at(self, code: str, day: date) -> ValueAt:
        """The value of parameter ``code`` in force on ``day``.

        Args:
            code: the parameter code (``G``).
            day: the Paris date of the act.

        Returns:
            ``ValueAt(value, effective_from, reference)``. Raises ``KeyError`` for an unknown
            code and ``LookupError`` when the parameter has no value that day.
        """
        entry = self.parameters[code].entry_at(day)
        if entry is None or entry.value is None:
            raise LookupError(f"parameter {code} has no value on {day}")
        return ValueAt(entry.value, entry.effective_from, entry.reference)

    def rule_ids(self) -> list[str]:
        """Rule ids in file order, each once."""
        return list(dict.fromkeys(r.id for r in self.rules))

    def group_of(self, rule_id: str) -> ExclusiveGroup | None:
        """The exclusivity group a rule belongs to, if any."""
        return next((g for g in self.groups if rule_id in g.rules), None)

    def to_canonical(self) -> dict[str, Any]:
        """The full resolved content as plain JSON values (dates and money as strings)."""
        return {
            "format": "claims-ledger-rule-set/1",
            "name": self.name,
            "description": self.description,
            "base": self.base,
            "modifications": list(self.modifications),
            "options": dict(sorted(self.options.items())),
            "parameters": {code: _param_json(p) for code, p in sorted(self.parameters.items())},
            "rules": [_rule_json(r) for r in self.rules],
            "exclusive_groups": [{"id": g.id, "description": g.description, "rules": list(g.rules)}
                                 for g in self.groups],
        }

    def to_canonical_json(self) -> str:
        """The canonical serialisation (sorted keys, compact, UTF-8 text) of ``to_canonical()``."""
        return self._canonical_text

    @cached_property
    def _canonical_text(self) -> str:
        return json.dumps(self.to_canonical(), ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"))

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 (hex) of ``to_canonical_json()`` encoded as UTF-8."""
        return hashlib.sha256(self.to_canonical_json().encode("utf-8")).hexdigest()


def _param_json(p: Parameter) -> dict[str, Any]:
    return {
        "description": p.description, "unit": p.unit,
        "values": [{"from": e.effective_from.isoformat(),
                    "value": None if e.value is None else str(e.value),
                    "reference": {"title": e.reference.title, "href": e.reference.href},
                    "confirmed": e.confirmed, "note": e.note} for e in p.values],
    }


def _rule_json(r: Rule) -> dict[str, Any]:
    return {
        "id": r.id, "code": r.code, "why": r.why, "note": r.note,
        "from": r.valid_from.isoformat() if r.valid_from else None,
        "until": r.valid_until.isoformat() if r.valid_until else None,
        "when": {k: _plain(v) for k, v in r.conditions},
        "weekly_cap": r.weekly_cap,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
