"""What one file's ingestion gave: counts of events by kind, and the rows quarantined."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ledger.decide import Outcome
from ledger.errors import Problem
from ledger.ingest.prepare import Bad


@dataclass
class IngestReport:
    """What one file gave (with ``dry_run``, what it would have written; nothing was)."""

    file: str
    kind: str
    sha256: str
    batch_id: UUID
    encoding: str
    rows: int = 0
    recorded: int = 0
    corrected: int = 0
    voided: int = 0
    decided: int = 0
    unchanged: int = 0
    new_events: int = 0
    already_ingested: bool = False
    quarantined: list[Problem] = field(default_factory=list)
    dry_run: bool = False
    #: Each quarantined line's text, to be sealed (``ledger.quarantine``): never output.
    texts: dict[int, str] = field(default_factory=dict, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file, "kind": self.kind, "sha256": self.sha256,
            "batch_id": str(self.batch_id), "encoding": self.encoding, "rows": self.rows,
            "new_events": self.new_events, "recorded": self.recorded,
            "corrected": self.corrected, "voided": self.voided, "decided": self.decided,
            "unchanged": self.unchanged, "already_ingested": self.already_ingested,
            "quarantined": [p.as_json() for p in self.quarantined], "dry_run": self.dry_run,
        }

    @property
    def changed(self) -> int:
        """The rows that gave an event."""
        return self.recorded + self.corrected + self.voided + self.decided

    def count(self, outcome: Outcome) -> None:
        name = outcome.value
        setattr(self, name, getattr(self, name) + 1)

    def quarantine(self, line: int, column: str | None, reason: str) -> None:
        self.quarantined.append(Problem(self.file, line, column, reason))

    def bad(self, row: Bad) -> None:
        self.texts[row.line] = row.raw
        for column, reason in row.problems:
            self.quarantine(row.line, column, reason)

    def unknown(self, line: int, ref: str, void: bool = False) -> None:
        """A row of an encounter the ledger does not hold (yet)."""
        if void:
            self.quarantine(line, "encounter_ref", f"void of an unknown encounter {ref}")
        else:
            self.quarantine(line, "encounter_ref", f"unknown encounter {ref} (re-ingest this "
                            "file once the encounter is in the ledger)")
