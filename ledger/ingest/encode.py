"""Event states built directly as JSON, byte-identical to the pydantic models' own serialisation.

The ingest hot path writes millions of events; building and serialising a pydantic model per
event costs more than everything else together. These builders produce the same bytes as
``ledger.persistence.event_state(event)`` for the same values (the unit tests assert it on
generated rows), so the mapper and every library reader see no difference.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def iso(value: datetime | None) -> str | None:
    """A datetime as pydantic writes it (``Z`` for UTC)."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def money(value: Decimal) -> str:
    return str(value)


def facts_json(row: dict[str, Any], pseudonym: str) -> str:
    """``EncounterFacts`` JSON for a parsed encounter row, fields in model order."""
    return _dumps({
        "association": row["association"],
        "encounter_ref": row["encounter_ref"],
        "regulation_origin": row["regulation_origin"],
        "regulated_at": iso(row["regulated_at"]),
        "performed_at": iso(row["performed_at"]),
        "act": row["act"],
        "patient_pseudonym": pseudonym,
        "patient_birth_year": row["patient_birth_year"],
        "doctor_rpps": row["doctor_rpps"],
        "treating_doctor": row["treating_doctor"],
        "pdsa": row["pdsa"],
        "billed_codes": list(row["billed_codes"]),
        "billed_amount": money(row["billed_amount"]),
        "invoice_ref": row["invoice_ref"],
    })


def decision_json(row: dict[str, Any]) -> str:
    """``Decision`` JSON for a parsed decision row."""
    return _dumps({
        "decided_at": row["decided_at"].isoformat(),
        "paid_amount": money(row["paid_amount"]),
        "paid_codes": list(row["paid_codes"]),
        "rejected_codes": list(row["rejected_codes"]),
        "reason": row["reason"],
    })


def provenance_json(file_name: str, file_sha256: str, line: int, batch_id: UUID,
                    extra: dict[str, str]) -> str:
    return _dumps({"file_name": file_name, "file_sha256": file_sha256, "line": line,
                   "batch_id": str(batch_id), "extra": extra})


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_json(head: dict[str, Any], raw: dict[str, str]) -> bytes:
    """An event state: ``head`` fields encoded normally, then fields already JSON (``raw``).

    Args:
        head: the leading fields (timestamp, actor, …) as plain values, in model order.
        raw: the remaining fields, in model order, each already a JSON text or a plain value.
    """
    parts = [_dumps(head)[:-1]]
    for key, value in raw.items():
        parts.append(f',"{key}":{value}')
    parts.append("}")
    return "".join(parts).encode("utf-8")
