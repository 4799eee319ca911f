"""Row models: one pydantic model per export, validating a row's cells into typed values.

Input values are hidden from pydantic's messages (``hide_input_in_errors``) so a patient
identifier can never leak through an error.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from ledger.ingest import values


def _opt(parser: Any) -> Any:
    def parse(v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        return parser(v) if isinstance(v, str) else v

    return parse


def _req(parser: Any) -> Any:
    def parse(v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            raise ValueError("required value is missing")
        return parser(v) if isinstance(v, str) else v

    return parse


def _text(v: Any) -> str:
    return v.strip()


def _upper(v: Any) -> str:
    return v.strip().upper()


def _lower(v: Any) -> str:
    return v.strip().lower()


def _year(v: str) -> int:
    year = int(v.strip())
    if not 1890 <= year <= 2100:
        raise ValueError(f"not a birth year: {v.strip()!r}")
    return year


Text = Annotated[str, BeforeValidator(_req(_text))]
OptText = Annotated[str | None, BeforeValidator(_opt(_text))]
Money = Annotated[Decimal, BeforeValidator(_req(values.parse_money))]
DateTime = Annotated[datetime, BeforeValidator(_req(values.parse_datetime))]
OptDateTime = Annotated[datetime | None, BeforeValidator(_opt(values.parse_datetime))]
Day = Annotated[date, BeforeValidator(_req(values.parse_date))]
Codes = Annotated[tuple[str, ...], BeforeValidator(_req(values.parse_codes))]
OptCodes = Annotated[tuple[str, ...], BeforeValidator(lambda v: values.parse_codes(v or ""))]
Flag = Annotated[bool, BeforeValidator(lambda v: values.parse_flag(v or ""))]
Rpps = Annotated[str, BeforeValidator(_req(values.parse_rpps))]
BirthYear = Annotated[int | None, BeforeValidator(_opt(_year))]


class Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class EncounterRow(Row):
    association: Annotated[str, BeforeValidator(_req(_upper))]
    encounter_ref: Text
    regulation_origin: Annotated[Literal["SAS", "SOS", "C15", "NONE"], BeforeValidator(_req(_upper))]
    regulated_at: OptDateTime = None
    performed_at: DateTime
    act: Annotated[Literal["consultation", "visit"], BeforeValidator(_req(_lower))]
    patient_ref: Text
    patient_birth_year: BirthYear = None
    doctor_rpps: Rpps
    treating_doctor: Flag = False
    pdsa: Flag = False
    billed_codes: Codes
    billed_amount: Money
    invoice_ref: OptText = None
    status: Annotated[Literal["active", "void"], BeforeValidator(lambda v: (v or "active").strip().lower() or "active")] = "active"

    @model_validator(mode="after")
    def _regulation_time(self) -> EncounterRow:
        if self.regulation_origin != "NONE" and self.regulated_at is None:
            raise ValueError("regulated_at is required when regulation_origin is not NONE")
        if self.regulated_at is not None and self.regulated_at > self.performed_at:
            raise ValueError("regulated_at is after performed_at")
        return self


class DecisionRow(Row):
    association: Annotated[str, BeforeValidator(_req(_upper))]
    encounter_ref: Text
    decided_at: Day
    paid_amount: Money
    paid_codes: OptCodes = ()
    rejected_codes: OptCodes = ()
    reason: OptText = None


ENCOUNTER_REQUIRED = (
    "association", "encounter_ref", "regulation_origin", "performed_at", "act", "patient_ref",
    "doctor_rpps", "billed_codes", "billed_amount",
)
ENCOUNTER_COLUMNS = (*ENCOUNTER_REQUIRED, "regulated_at", "patient_birth_year", "treating_doctor",
                     "pdsa", "invoice_ref", "status")
DECISION_REQUIRED = ("association", "encounter_ref", "decided_at", "paid_amount")
DECISION_COLUMNS = (*DECISION_REQUIRED, "paid_codes", "rejected_codes", "reason")


def describe(error: ValidationError) -> list[tuple[str | None, str]]:
    """Turn a pydantic error into ``(column, reason)`` pairs without input values."""
    out: list[tuple[str | None, str]] = []
    for item in error.errors(include_input=False, include_url=False):
        loc = item.get("loc") or ()
        column = str(loc[0]) if loc else None
        message = item.get("msg", "invalid value")
        message = message.removeprefix("Value error, ")
        if item.get("type") == "literal_error":
            message = "unknown value; " + message[0].lower() + message[1:]
        out.append((column, message))
    return out
