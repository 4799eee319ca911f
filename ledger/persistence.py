"""The pydantic mapper: events are stored as plain UTF-8 JSON (no compression, no cipher).

PostgreSQL reads the same JSON (``convert_from(state, 'UTF8')::jsonb``) when it rebuilds
projections, so the stored state must stay plain JSON. Patient identifiers are pseudonymised
before they reach an event, which is why no library-level encryption is needed.
"""

from __future__ import annotations

import json
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic
from pydantic import BaseModel

_KEYS = {"originator_id", "originator_version"}


def event_state(event: BaseModel) -> bytes:
    """The stored state of an event: its JSON without the id and version columns."""
    return event.model_dump_json(exclude=_KEYS).encode("utf-8")


class PydanticMapper(Mapper[UUID]):
    """Maps pydantic domain events to stored events and back."""

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        event = cast(BaseModel, domain_event)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=event_state(event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        cls = resolve_topic(stored_event.topic)
        data = json.loads(stored_event.state)
        data["originator_id"] = stored_event.originator_id
        data["originator_version"] = stored_event.originator_version
        return cast(DomainEventProtocol[Any], cls.model_validate(data))
