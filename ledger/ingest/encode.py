"""A parsed row's payload JSON, as its model's layout says (``ledger.layout``): byte-identical to
pydantic's serialisation of the same values, without a model per row."""

from __future__ import annotations

import hashlib
from typing import Any

from ledger import domain, layout


def facts_json(row: dict[str, Any], pseudonym: str) -> str:
    """``EncounterFacts`` JSON of a parsed encounters row (its patient as ``pseudonym``)."""
    return layout.to_json(domain.EncounterFacts, {**row, "patient_pseudonym": pseudonym})


def decision_json(row: dict[str, Any]) -> str:
    """``Decision`` JSON of a parsed decisions row."""
    return layout.to_json(domain.Decision, row)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
