"""The event-store application on ``eventsourcing.postgres``, with the project's pydantic mapper.

Bulk ingestion writes the same stored-event rows directly (see ``ledger.store``); everything the
library offers (``repository.get``, the notification log) reads them as if ``save`` had written them.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper

from ledger.persistence import PydanticMapper

APP_NAME = "ClaimsLedger"
EVENTS_TABLE = "claimsledger_events"


class ClaimsLedger(Application[UUID]):
    """Commands and queries of the write side; one instance per process."""

    name = APP_NAME

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=dict(env or {}))

    def construct_mapper(self) -> Mapper[UUID]:
        return PydanticMapper(transcoder=self.construct_transcoder())
