"""What an extract is made of: stored events with their chain links, and the included encounters.

Shared by the snapshot reader (``collect``), the bundle writer (``extract``) and the PDF report
(``report_pdf``), so that neither of the last two imports the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from projections.facts import EncounterFacts


@dataclass
class StoredEventRecord:
    """One stored event as it goes into the bundle, with its chain links."""

    position: int
    originator_id: UUID
    version: int
    topic: str
    state_text: str
    link_before: bytes = b""
    link: bytes = b""


@dataclass
class IncludedEncounter:
    encounter_id: str
    encounter_ref: str
    voided: bool
    events: list[StoredEventRecord] = field(default_factory=list)
    facts: EncounterFacts | None = None


def event_json(e: StoredEventRecord) -> dict[str, Any]:
    """One stored event in the bundle: exact stored state text, parsed state, provenance."""
    state = json.loads(e.state_text)
    return {"position": e.position, "aggregate_id": str(e.originator_id), "version": e.version,
            "topic": e.topic, "state_json": e.state_text, "state": state,
            "provenance": state.get("provenance")}
