"""Rebuilding the projection tables from the whole log, with the JSON parsed by DuckDB.

In a set-based SQL rebuild PostgreSQL spends most of its time parsing the events' JSON (``jsonb``
input). Here each range of the log goes out with ``COPY ... TO STDOUT``, DuckDB extracts the
fields of every state in one vectorised pass (one parse per state, off the GIL), and the rows come
back with ``COPY ... FROM STDIN`` (CSV), where PostgreSQL only reads plain values into their
types. Values keep their JSON text until PostgreSQL types them, as the SQL path does, so both
give the same tables (``tests/integration/test_projection.py`` asserts it); incremental catch-up
keeps the SQL path. Each slice of the log is read once for both tables (each state comes out with
whether it is a decision). Temporary files live in a private folder and, like the DuckDB table
of the slice's states, hold one slice at a time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from eventsourcing.utils import get_topic
from psycopg import sql

from ledger import domain
from ledger.application import EVENTS_TABLE

#: Events per slice: bounds the temporary files and DuckDB's copy of the states (~1 KB an
#: event each) whatever the log size.
SLICE_EVENTS = 200_000

_FACTS = ("association", "encounter_ref", "regulation_origin", "regulated_at", "performed_at",
          "act", "patient_pseudonym", "patient_birth_year", "doctor_rpps", "treating_doctor",
          "pdsa", "billed_codes", "billed_amount", "invoice_ref")
_DECISION = ("decided_at", "paid_amount", "paid_codes", "rejected_codes", "reason")
_CODES = ("billed_codes", "paid_codes", "rejected_codes")

FACT_COLUMNS = ("encounter_id", "version", "notification_id", "recorded_at", *_FACTS, "voided")
DECISION_COLUMNS = ("encounter_id", "version", "notification_id", "recorded_at", *_DECISION)


def _select(kind: str, fields: tuple[str, ...], source: str) -> str:
    """DuckDB: one row per event of the slice file, in the projection table's column order."""
    paths = ["$.timestamp", *(f"$.{kind}.{f}" for f in fields)]
    values = []
    for i, name in enumerate(fields, start=2):
        value = f"v[{i}]"
        if name in _CODES:  # a JSON array of codes, stored joined by '+' (as array_to_string)
            value = f"""array_to_string(from_json({value}, '["VARCHAR"]'), '+')"""
        values.append(value)
    extra = ", false" if kind == "facts" else ""
    path_list = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    return (f"SELECT id, version, nid, v[1], {', '.join(values)}{extra} "
            f"FROM (SELECT id, version, nid, json_extract_string(state, {path_list}) AS v "
            f"FROM {source})")


def project_range(conn: Any, after: int, upto: int, facts_table: str, decisions_table: str
                  ) -> None:
    """Project the events in positions (after, upto] into the two (staging) tables.

    Args:
        conn: a connection in a transaction (its own, or the caller's).
        after: the last position not to project.
        upto: the last position to project.
        facts_table: the table of fact versions to fill.
        decisions_table: the table of decisions to fill.
    """
    fact_topics = [get_topic(domain.Encounter.Recorded), get_topic(domain.Encounter.Corrected)]
    decided = get_topic(domain.Encounter.Decided)
    with tempfile.TemporaryDirectory(prefix="claims-rebuild-") as tmp, \
            duckdb.connect(config={"threads": 1}) as db:
        work = Path(tmp)
        states = work / "states.txt"
        for start, end in _slices(after, upto):
            # One pass over the slice for both tables: each state comes out with its kind.
            if not _copy_out(conn, start, end, [*fact_topics, decided], decided, states):
                continue
            # COPY's text format escapes only backslashes here (a JSON text has no raw control
            # characters), so undoing that gives the state back byte for byte.
            db.execute(
                "CREATE OR REPLACE TEMP TABLE slice AS SELECT id, version, nid, decision, "
                "replace(state, '\\\\', '\\') AS state "
                f"FROM read_csv('{states}', auto_detect = false, header = false, delim = '\t', "
                "quote = '', escape = '', columns = {'id': 'VARCHAR', 'version': 'BIGINT', "
                "'nid': 'BIGINT', 'decision': 'BOOLEAN', 'state': 'VARCHAR'}, "
                "max_line_size = 16777216)")
            for kind, table, columns, fields in (
                    ("facts", facts_table, FACT_COLUMNS, _FACTS),
                    ("decision", decisions_table, DECISION_COLUMNS, _DECISION)):
                source = f"(SELECT * FROM slice WHERE {'' if kind == 'decision' else 'NOT '}decision)"
                rows = work / "rows.csv"
                db.execute(f"COPY ({_select(kind, fields, source)}) TO '{rows}' "
                           "(FORMAT csv, HEADER false)")
                if rows.stat().st_size:
                    _copy_in(conn, table, columns, rows)


def _slices(after: int, upto: int) -> Iterator[tuple[int, int]]:
    start = after
    while start < upto:
        end = min(start + SLICE_EVENTS, upto)
        yield start, end
        start = end


def _copy_out(conn: Any, after: int, upto: int, topics: list[str], decided: str,
              path: Path) -> int:
    """The events' id, version, position, whether it is a decision, and state text (COPY text
    format); returns the bytes written."""
    query = sql.SQL(
        "COPY (SELECT originator_id, originator_version, notification_id, topic = {}, "
        "convert_from(state, 'UTF8') FROM {} WHERE notification_id > {} "
        "AND notification_id <= {} AND topic = ANY({})) TO STDOUT"
    ).format(sql.Literal(decided), sql.Identifier(EVENTS_TABLE), sql.Literal(after),
             sql.Literal(upto), sql.Literal(topics))
    size = 0
    pending: list[bytes] = []
    with path.open("wb") as out, conn.cursor().copy(query) as copy:
        for row in copy:  # a row at a time: written in larger pieces
            pending.append(row)
            if len(pending) >= 1000:
                size += out.write(b"".join(pending))
                pending = []
        size += out.write(b"".join(pending))
    return size


def _copy_in(conn: Any, table: str, columns: tuple[str, ...], path: Path) -> None:
    query = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with path.open("rb") as source, conn.cursor().copy(query) as copy:
        while block := source.read(1 << 20):
            copy.write(block)
