"""Per-row work of an ingest that needs no database: parse, validate, pseudonymise, encode.

Pure functions over plain values, so large files can spread them over worker processes while
the main process does what needs the database (lookups, COPY, the hash chain). A prepared row is
either ``Good`` (everything the events need, already JSON) or ``Bad`` (the problems found and the
row's text as it came, for the quarantine's sealed copy only: ``ledger.quarantine``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import NamedTuple
from uuid import UUID

from ledger import domain, layout
from ledger.ingest import encode, reader
from ledger.ingest.rows import DECISION_SCHEMA, ENCOUNTER_SCHEMA, RowParser
from ledger.pseudonym import Pseudonymiser
from ledger.vocabulary import PARIS


class Good(NamedTuple):
    line: int
    oid: UUID
    ref: str             # "ASSOCIATION/REF", for messages
    void: bool
    payload: str         # facts JSON (encounters) or decision JSON (decisions)
    sha: str             # SHA-256 of the payload
    effective_at: str    # ISO time: the act, or the decision day at midnight (Paris)
    extra: dict[str, str]


class Bad(NamedTuple):
    line: int
    problems: list[tuple[str | None, str]]
    raw: str  # never shown, logged or stored in clear: sealed (``ledger.quarantine``)


@dataclass(frozen=True)
class RowContext:
    """What preparing a row needs to know about its file (picklable, sent once per chunk)."""

    kind: str
    header: tuple[str, ...]
    known_columns: frozenset[str]
    separator: str
    key: bytes = field(repr=False)


def row_text(ctx: RowContext, fields: list[str]) -> str:
    """A row's text as CSV, as it came (for the quarantine's sealed copy, ``ledger.quarantine``:
    it may hold a patient identifier in any cell, so it is never shown or logged)."""
    out = io.StringIO()
    csv.writer(out, delimiter=ctx.separator, lineterminator="").writerow(fields)
    return out.getvalue()


def prepare(ctx: RowContext, rows: Iterable[reader.Record]) -> list[Good | Bad]:
    """Prepare a chunk of records; see the module docstring."""
    pseudonymise = Pseudonymiser(ctx.key)
    encounters = ctx.kind == "encounters"
    parse = RowParser(ENCOUNTER_SCHEMA if encounters else DECISION_SCHEMA, list(ctx.header))
    width = len(ctx.header)
    has_extra = any(h not in ctx.known_columns for h in ctx.header)
    out: list[Good | Bad] = []
    for record in rows:
        if isinstance(record, reader.Unreadable):
            out.append(Bad(record.line, [(None, record.reason)], record.text.rstrip("\r\n")))
            continue
        line, fields = record
        if len(fields) != width:
            out.append(Bad(line, [(None, f"row has {len(fields)} fields, the header has {width}")],
                           row_text(ctx, fields)))
            continue
        row, problems = parse(fields)
        if problems:
            out.append(Bad(line, problems, row_text(ctx, fields)))
            continue
        extra = ({k: v for k, v in zip(ctx.header, fields, strict=True)
                  if k not in ctx.known_columns} if has_extra else {})
        oid = domain.encounter_id(row["association"], row["encounter_ref"])
        ref = f"{row['association']}/{row['encounter_ref']}"
        if encounters:
            payload = encode.facts_json(row, pseudonymise(row["patient_ref"]))
            effective = layout.iso(row["performed_at"])
            void = row["status"] == "void"
        else:
            payload = encode.decision_json(row)
            effective = f"{row['decided_at'].isoformat()}T00:00:00{_paris_midnight(row)}"
            void = False
        assert effective is not None
        out.append(Good(line, oid, ref, void, payload, encode.sha256(payload), effective, extra))
    return out


def _paris_midnight(row: dict[str, object]) -> str:
    day = row["decided_at"]
    moment = datetime.combine(day, time(0), tzinfo=PARIS)  # type: ignore[arg-type]
    return moment.isoformat()[19:]
