"""Row schemas: each export column with its parser, and the checks across columns.

Parsing a row gives either its typed values or a list of ``(column, reason)`` problems. This is
the ingest hot path (millions of rows), so it is plain functions over a column table rather than a
model object per row; ``ledger.domain`` defines the validated event payloads the values go into.
Reasons never quote a cell: in a shifted row any cell may hold a patient identifier.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.ingest import values

Parser = Callable[[str], Any]

ORIGINS = frozenset({"SAS", "SOS", "C15", "NONE"})
ACTS = frozenset({"consultation", "visit"})
STATUSES = frozenset({"active", "void"})


def _choice(allowed: frozenset[str], case: Callable[[str], str]) -> Parser:
    listing = ", ".join(sorted(allowed))

    def parse(text: str) -> str:
        value = case(text.strip())
        if value not in allowed:
            raise ValueError(f"unknown value; expected one of {listing}")
        return value

    return parse


def _birth_year(text: str) -> int:
    return values.parse_year(text, 1890, 2100)


def _status(text: str) -> str:
    return _choice(STATUSES, str.lower)(text) if text.strip() else "active"


# (column, required, parser). Optional columns give None (flags: False) when empty or absent.
ENCOUNTER_SCHEMA: tuple[tuple[str, bool, Parser], ...] = (
    ("association", True, values.parse_association),
    ("encounter_ref", True, values.parse_text),
    ("regulation_origin", True, _choice(ORIGINS, str.upper)),
    ("regulated_at", False, values.parse_datetime),
    ("performed_at", True, values.parse_datetime),
    ("act", True, _choice(ACTS, str.lower)),
    ("patient_ref", True, values.parse_text),
    ("patient_birth_year", False, _birth_year),
    ("doctor_rpps", True, values.parse_rpps),
    ("treating_doctor", False, values.parse_flag),
    ("pdsa", False, values.parse_flag),
    ("billed_codes", True, values.parse_codes),
    ("billed_amount", True, values.parse_money),
    ("invoice_ref", False, values.parse_text),
    ("status", False, _status),
)

DECISION_SCHEMA: tuple[tuple[str, bool, Parser], ...] = (
    ("association", True, values.parse_association),
    ("encounter_ref", True, values.parse_text),
    ("decided_at", True, values.parse_date),
    ("paid_amount", True, values.parse_money),
    ("paid_codes", False, values.parse_codes),
    ("rejected_codes", False, values.parse_codes),
    ("reason", False, values.parse_text),
)

_EMPTY = {"treating_doctor": False, "pdsa": False, "paid_codes": (), "rejected_codes": (),
          "status": "active"}

ENCOUNTER_COLUMNS = tuple(c for c, _, _ in ENCOUNTER_SCHEMA)
DECISION_COLUMNS = tuple(c for c, _, _ in DECISION_SCHEMA)
ENCOUNTER_REQUIRED = tuple(c for c, r, _ in ENCOUNTER_SCHEMA if r)
DECISION_REQUIRED = tuple(c for c, r, _ in DECISION_SCHEMA if r)


class RowParser:
    """Parses rows of one file: the schema's columns resolved to positions in its header."""

    def __init__(self, schema: tuple[tuple[str, bool, Parser], ...], header: list[str]):
        position = {name: i for i, name in enumerate(header)}
        self.plan = [(c, required, parser, position.get(c)) for c, required, parser in schema]
        self.encounters = "performed_at" in position

    def __call__(self, fields: list[str]) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
        """Typed values of a row and the problems found, one per bad column."""
        out: dict[str, Any] = {}
        problems: list[tuple[str | None, str]] = []
        for column, required, parser, index in self.plan:
            text = fields[index] if index is not None else ""
            if not text or text.isspace():
                if required:
                    problems.append((column, "required value is missing"))
                out[column] = _EMPTY.get(column)
                continue
            try:
                out[column] = parser(text)
            except ValueError as exc:
                problems.append((column, str(exc)))
        if not problems and self.encounters:
            problems.extend(_encounter_checks(out))
        return out, problems


def parse_row(schema: tuple[tuple[str, bool, Parser], ...], record: dict[str, str]
              ) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """Parse one row given as a mapping (convenience for tests and single rows)."""
    header = list(record)
    return RowParser(schema, header)([record[h] for h in header])


def _encounter_checks(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    if row["regulation_origin"] != "NONE" and row["regulated_at"] is None:
        return [("regulated_at", "regulated_at is required when regulation_origin is not NONE")]
    if row["regulated_at"] is not None and row["regulated_at"] > row["performed_at"]:
        return [("regulated_at", "regulated_at is after performed_at")]
    return []
