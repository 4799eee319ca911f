"""The stored states of one batch's events, built from JSON parts in their model's layout.

Byte-identical to ``persistence.event_state`` of the same event (``tests/unit/test_encode.py``),
without building a pydantic model per event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.utils import get_topic

from ledger import domain, layout
from ledger.ingest.prepare import Good
from ledger.persistence import event_state
from ledger.store import NewEvent

T_RECORDED = get_topic(domain.Encounter.Recorded)
T_CORRECTED = get_topic(domain.Encounter.Corrected)
T_VOIDED = get_topic(domain.Encounter.Voided)
T_DECIDED = get_topic(domain.Encounter.Decided)
VOID_REASON = "voided at source"
#: The line number a provenance is first built with, then cut at (never a real line).
_LINE_MARK = -7


def _json(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


class BatchEvents:
    """Builds the events of one import batch: its constant parts encoded once.

    Args:
        recorded_at: the batch's recorded time (every event's ``timestamp``).
        actor: who records it.
        file_name, file_sha256, batch_id: the provenance of every row of the batch.
    """

    def __init__(self, recorded_at: datetime, actor: str, file_name: str, file_sha256: str,
                 batch_id: UUID):
        self.recorded_at = recorded_at
        self.actor = actor
        self.head = {"timestamp": _json(layout.iso(recorded_at)), "actor": _json(actor),
                     "originator_topic": _json(get_topic(domain.Encounter))}
        self.provenance_base: dict[str, Any] = {
            "file_name": file_name, "file_sha256": file_sha256, "batch_id": batch_id}
        marked = self.provenance(_LINE_MARK, {})
        self.provenance_prefix, self.provenance_suffix = marked.split(str(_LINE_MARK), 1)

    def provenance(self, line: int, extra: dict[str, str]) -> str:
        """A row's ``Provenance`` JSON."""
        if not extra and line != _LINE_MARK:
            return f"{self.provenance_prefix}{line}{self.provenance_suffix}"
        return layout.to_json(domain.Provenance,
                              {**self.provenance_base, "line": line, "extra": extra})

    def _state(self, event: type[Any], **parts: str) -> bytes:
        return layout.state_json(event, {**self.head, **parts}).encode("utf-8")

    def recorded(self, row: Good) -> NewEvent:
        return NewEvent(row.oid, 1, T_RECORDED, self._state(
            domain.Encounter.Recorded, effective_at=_json(row.effective_at), facts=row.payload,
            facts_sha256=_json(row.sha), provenance=self.provenance(row.line, row.extra)))

    def corrected(self, row: Good, version: int, changed: tuple[str, ...]) -> NewEvent:
        return NewEvent(row.oid, version, T_CORRECTED, self._state(
            domain.Encounter.Corrected, effective_at=_json(row.effective_at), facts=row.payload,
            facts_sha256=_json(row.sha), changed=_json(list(changed)),
            provenance=self.provenance(row.line, row.extra)))

    def voided(self, row: Good, version: int) -> NewEvent:
        return NewEvent(row.oid, version, T_VOIDED, self._state(
            domain.Encounter.Voided, effective_at=_json(row.effective_at),
            reason=_json(VOID_REASON), provenance=self.provenance(row.line, row.extra)))

    def decided(self, row: Good, version: int) -> NewEvent:
        return NewEvent(row.oid, version, T_DECIDED, self._state(
            domain.Encounter.Decided, effective_at=_json(row.effective_at), decision=row.payload,
            decision_sha256=_json(row.sha), provenance=self.provenance(row.line, row.extra)))

    def batch_event(self, cls: type[Any], batch: UUID, version: int, **fields: Any) -> NewEvent:
        """An ``ImportBatch`` event (one or two a batch: built by pydantic itself)."""
        event = cls.model_construct(originator_id=batch, originator_version=version,
                                    timestamp=self.recorded_at, actor=self.actor,
                                    effective_at=self.recorded_at, **fields)
        return NewEvent(batch, version, get_topic(cls), event_state(event))
