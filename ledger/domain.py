"""Aggregates and their events: ``Encounter``, ``ImportBatch``, ``RuleSet``.

Events are frozen pydantic models nested in their aggregate and named in the past tense. They are
the only source of truth: every table elsewhere is rebuilt from them. Each event carries when the
ledger learned it (``timestamp``, the recorded time), when it happened in the world
(``effective_at``) and who recorded it (``actor``).

Aggregate ids are deterministic (uuid5), so the same encounter or file always maps to the same id.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate
from pydantic import BaseModel, ConfigDict, Field

#: Who is acting, set once by the CLI (``claims --actor`` or the OS user); recorded on every event.
current_actor: ContextVar[str] = ContextVar("current_actor", default="unknown")

NAMESPACE = uuid5(NAMESPACE_URL, "https://claims-ledger.invalid/")

Origin = Literal["SAS", "SOS", "C15", "NONE"]
Act = Literal["consultation", "visit"]


def encounter_id(association: str, encounter_ref: str) -> UUID:
    """The deterministic id of an encounter: uuid5 of association and reference."""
    return uuid5(NAMESPACE, f"encounter:{association}\x1f{encounter_ref}")


def batch_id(file_sha256: str, kind: str) -> UUID:
    """The deterministic id of an import batch: uuid5 of the file's hash and kind."""
    return uuid5(NAMESPACE, f"batch:{kind}\x1f{file_sha256}")


def rule_set_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"ruleset:{name}")


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EncounterFacts(Payload):
    """All the facts of one regulated encounter, as exported (patient pseudonymised)."""

    association: str
    encounter_ref: str
    regulation_origin: Origin
    regulated_at: datetime | None
    performed_at: datetime
    act: Act
    patient_pseudonym: str
    patient_birth_year: int | None = None
    doctor_rpps: str
    treating_doctor: bool = False
    pdsa: bool = False
    billed_codes: tuple[str, ...]
    billed_amount: Decimal
    invoice_ref: str | None = None


class Decision(Payload):
    """The insurer's billing decision on one encounter."""

    decided_at: date
    paid_amount: Decimal
    paid_codes: tuple[str, ...] = ()
    rejected_codes: tuple[str, ...] = ()
    reason: str | None = None


class Provenance(Payload):
    """Where a fact came from: file, line, batch; unknown extra columns kept verbatim."""

    file_name: str
    file_sha256: str
    line: int
    batch_id: UUID
    extra: dict[str, str] = Field(default_factory=dict)


class DomainEvent(BaseModel):
    """Base of all events: frozen, JSON-serialisable, readable by PostgreSQL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    actor: str = Field(default_factory=lambda: current_actor.get())


class Aggregate(BaseAggregate[UUID]):
    """Base aggregate whose events are pydantic models."""

    class Event(DomainEvent, CanMutateAggregate[UUID]):
        pass

    class Created(Event, CanInitAggregate[UUID]):
        originator_topic: str


class Encounter(Aggregate):
    """One regulated encounter, its corrections, voiding and the insurer's decisions."""

    class Recorded(Aggregate.Created):
        effective_at: datetime
        facts: EncounterFacts
        facts_sha256: str
        provenance: Provenance

    class Corrected(Aggregate.Event):
        effective_at: datetime
        facts: EncounterFacts
        facts_sha256: str
        changed: tuple[str, ...]
        provenance: Provenance

        def apply(self, aggregate: Any) -> None:
            aggregate.facts = self.facts
            aggregate.facts_sha256 = self.facts_sha256

    class Voided(Aggregate.Event):
        effective_at: datetime
        reason: str
        provenance: Provenance

        def apply(self, aggregate: Any) -> None:
            aggregate.voided = True

    class Decided(Aggregate.Event):
        effective_at: datetime
        decision: Decision
        decision_sha256: str
        provenance: Provenance

        def apply(self, aggregate: Any) -> None:
            aggregate.decisions.append(self.decision)

    @staticmethod
    def create_id(facts: EncounterFacts, **_: Any) -> UUID:
        return encounter_id(facts.association, facts.encounter_ref)

    def __init__(self, facts: EncounterFacts, facts_sha256: str, provenance: Provenance,
                 effective_at: datetime) -> None:
        self.provenance = provenance
        self.facts = facts
        self.facts_sha256 = facts_sha256
        self.voided = False
        self.decisions: list[Decision] = []


class QuarantinedRow(Payload):
    """A row refused by an ingest: where and why. Its text is sealed outside the log
    (``ledger.quarantine``); ``raw_digest`` is its keyed digest. ``raw`` held the text with the
    patient pseudonymised before that: always None since."""

    line: int
    column: str | None
    reason: str
    raw: str | None
    raw_digest: str | None = None


class ImportBatch(Aggregate):
    """One ingested file: what it was, what it gave, what was quarantined."""

    class Started(Aggregate.Created):
        effective_at: datetime
        file_name: str
        file_sha256: str
        kind: Literal["encounters", "decisions"]
        profile: str

    class Completed(Aggregate.Event):
        effective_at: datetime
        rows: int
        new_events: int
        unchanged: int
        quarantined: tuple[QuarantinedRow, ...]

        def apply(self, aggregate: Any) -> None:
            aggregate.completed = True

    @staticmethod
    def create_id(file_sha256: str, kind: str, **_: Any) -> UUID:
        return batch_id(file_sha256, kind)

    def __init__(self, file_name: str, file_sha256: str, kind: str, profile: str,
                 effective_at: datetime) -> None:
        self.file_name = file_name
        self.file_sha256 = file_sha256
        self.kind = kind
        self.profile = profile
        self.completed = False


class RuleSet(Aggregate):
    """A tariff rule set as published to the ledger: full content and its hash."""

    class Published(Aggregate.Created):
        effective_at: datetime
        name: str
        content_sha256: str
        content: str

    class Republished(Aggregate.Event):
        effective_at: datetime
        content_sha256: str
        content: str

        def apply(self, aggregate: Any) -> None:
            aggregate.content_sha256 = self.content_sha256

    @staticmethod
    def create_id(name: str, **_: Any) -> UUID:
        return rule_set_id(name)

    def __init__(self, name: str, content_sha256: str, content: str,
                 effective_at: datetime) -> None:
        self.name = name
        self.content_sha256 = content_sha256
