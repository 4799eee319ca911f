"""The encounter facts the rule evaluators read: one record per encounter, as known at a moment.

This is the contract between the read side's facts table (built by ``projections.facts_table``)
and the rule evaluators (``projections.rules``). The batch evaluator reads the same columns from a
relation (DuckDB or PostgreSQL), see ``FACT_COLUMNS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.vocabulary import PARIS


@dataclass(frozen=True, slots=True)
class EncounterFacts:
    """The facts of one regulated encounter that tariff rules may look at.

    Times are timezone-aware. ``regulated_at`` is None when ``regulation_origin`` is ``NONE``.
    """

    encounter_id: str
    association: str
    encounter_ref: str
    regulation_origin: str
    regulated_at: datetime | None
    performed_at: datetime
    act: str
    doctor_rpps: str
    treating_doctor: bool
    pdsa: bool
    patient_birth_year: int | None = None

    @property
    def performed_local(self) -> datetime:
        """The act's Paris wall-clock time, naive (what time bands and calendars use)."""
        return self.performed_at.astimezone(PARIS).replace(tzinfo=None)

    @property
    def delay_seconds(self) -> int | None:
        """Seconds from regulation to act (true elapsed time, DST-safe), or None."""
        if self.regulated_at is None:
            return None
        # Subtract instants in UTC: two Paris-aware datetimes subtract as wall-clock times.
        return int((self.performed_at.astimezone(UTC)
                    - self.regulated_at.astimezone(UTC)).total_seconds())


#: Columns of the relation the batch evaluator reads (SQL types, DuckDB/PostgreSQL).
#: ``performed_local`` is the Paris wall-clock time without zone; ``delay_seconds`` is NULL when
#: there was no regulation.
FACT_COLUMNS: dict[str, str] = {
    "encounter_id": "VARCHAR",
    "association": "VARCHAR",
    "encounter_ref": "VARCHAR",
    "regulation_origin": "VARCHAR",
    "act": "VARCHAR",
    "doctor_rpps": "VARCHAR",
    "treating_doctor": "BOOLEAN",
    "pdsa": "BOOLEAN",
    "patient_birth_year": "INTEGER",
    "performed_at": "TIMESTAMPTZ",
    "performed_local": "TIMESTAMP",
    "delay_seconds": "BIGINT",
}
