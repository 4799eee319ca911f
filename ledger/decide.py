"""Which event a row of an export gives, from what the ledger knows of its encounter.

Pure functions of plain values: no database, no I/O. The ingest pipeline looks up what the
ledger knows, asks here, and writes what is decided.

An encounters row gives, for an encounter the ledger:
- does not know: ``RECORDED`` (a void of it is ``UNKNOWN``, quarantined);
- knows with the same facts, not voided: ``UNCHANGED`` (re-ingesting a file writes nothing);
- knows with other facts, or voided: ``CORRECTED``, with the names of the facts that changed;
- knows, with ``status=void``: ``VOIDED`` (``UNCHANGED`` if voided already).

A decisions row gives ``DECIDED`` unless its encounter is unknown (``UNKNOWN``, quarantined until
the encounter arrives) or the same decision is recorded already (``UNCHANGED``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np
import orjson


class Outcome(Enum):
    RECORDED = "recorded"
    CORRECTED = "corrected"
    VOIDED = "voided"
    DECIDED = "decided"
    UNCHANGED = "unchanged"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Known:
    """What the ledger knows of one encounter: its version (0: unknown), its latest facts (as
    their JSON) and their SHA-256, whether it is voided, the SHA-256 of its recorded decisions."""

    version: int = 0
    facts: str | bytes | None = None
    facts_sha256: str | None = None
    voided: bool = False
    decisions: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Step:
    """What one row gives: the outcome, the encounter's state after it, and for a correction
    the facts that changed (sorted)."""

    outcome: Outcome
    known: Known
    changed: tuple[str, ...] = ()


def encounter_row(known: Known, facts: str, facts_sha256: str, void: bool) -> Step:
    """The step of an encounters row.

    Args:
        known: what the ledger knows of the row's encounter.
        facts: the row's facts JSON (``EncounterFacts``).
        facts_sha256: its SHA-256.
        void: whether the row voids the encounter (``status=void``).
    """
    if void:
        if known.version == 0:
            return Step(Outcome.UNKNOWN, known)
        if known.voided:
            return Step(Outcome.UNCHANGED, known)
        return Step(Outcome.VOIDED, replace(known, version=known.version + 1, voided=True))
    if known.version == 0:
        return Step(Outcome.RECORDED, Known(1, facts, facts_sha256))
    if known.facts_sha256 == facts_sha256 and not known.voided:
        return Step(Outcome.UNCHANGED, known)
    new, old = orjson.loads(facts), _facts(known)
    changed = tuple(sorted(k for k in new if old.get(k) != new[k])) or ("status",)
    return Step(Outcome.CORRECTED, replace(known, version=known.version + 1, facts=facts,
                                           facts_sha256=facts_sha256, voided=False), changed)


def decision_row(known: Known, decision_sha256: str) -> Step:
    """The step of a decisions row whose decision JSON has this SHA-256."""
    if known.version == 0:
        return Step(Outcome.UNKNOWN, known)
    if decision_sha256 in known.decisions:
        return Step(Outcome.UNCHANGED, known)
    return Step(Outcome.DECIDED, replace(known, version=known.version + 1,
                                         decisions=known.decisions | {decision_sha256}))


def decision_block(versions: np.ndarray, recorded: list[frozenset[str]], shas: list[str]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``decision_row`` over a block of rows of distinct encounters, as arrays.

    Args:
        versions: each row's encounter's version (0: unknown), int64.
        recorded: each row's encounter's recorded decisions (their SHA-256).
        shas: each row's decision's SHA-256.

    Returns:
        Which rows are ``DECIDED`` (bool), and which are ``UNKNOWN``; the others are
        ``UNCHANGED``. A decided row's event is at its encounter's version + 1.
    """
    unknown = versions == 0
    decided = ~unknown
    for i, (sha, seen) in enumerate(zip(shas, recorded, strict=True)):
        if seen and sha in seen:
            decided[i] = False
    return decided, unknown


def _facts(known: Known) -> dict[str, Any]:
    return dict(orjson.loads(known.facts)) if known.facts is not None else {}
