"""The encounter-facts projection: typed tables rebuilt from the event log, set-based.

Both paths are the same set-based statements, PostgreSQL reading the events' JSON itself; no
event is decoded in Python. ``catch_up`` projects the events after the stored tracking position,
in one transaction that also moves the position (exactly once: a crash leaves both or neither).
``rebuild`` projects the whole log again into staging tables, ranges of the log shared out to
concurrent connections, and swaps them in.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from itertools import pairwise
from typing import Any

from eventsourcing.utils import get_topic

from ledger import domain
from ledger.application import EVENTS_TABLE

NAME = "encounter_facts"
#: Log positions per unit of rebuild work. The ranges go to whichever connection is free, so
#: both stay busy to the end however the kinds of events are spread over the log (a national
#: ingest writes a year of encounters, then a year of decisions at half the parse cost).
RANGE_EVENTS = 100_000
#: Memory for the index builds at the end of a rebuild (PostgreSQL takes only what it needs).
INDEX_BUILD_MEMORY = "256MB"

# One JSON parse per event, all fields extracted at once by jsonb_to_record (a parse inside a
# subquery would be inlined into every field reference and repeated: 200 k facts took 18.8-21.7 s
# that way against 2.9-3.1 s).

_INSERT_FACTS = f"""
INSERT INTO encounter_fact_versions (
    encounter_id, version, notification_id, recorded_at, association, encounter_ref,
    regulation_origin, regulated_at, performed_at, act, patient_pseudonym, patient_birth_year,
    doctor_rpps, treating_doctor, pdsa, billed_codes, billed_amount, invoice_ref, voided)
SELECT e.originator_id, e.originator_version, e.notification_id, t."timestamp",
    f.association, f.encounter_ref, f.regulation_origin, f.regulated_at, f.performed_at, f.act,
    f.patient_pseudonym, f.patient_birth_year, f.doctor_rpps, f.treating_doctor, f.pdsa,
    array_to_string(f.billed_codes, '+'), f.billed_amount, f.invoice_ref, false
FROM {EVENTS_TABLE} e
CROSS JOIN LATERAL jsonb_to_record(convert_from(e.state, 'UTF8')::jsonb)
    AS t("timestamp" timestamptz, facts jsonb)
CROSS JOIN LATERAL jsonb_to_record(t.facts) AS f(
    association text, encounter_ref text, regulation_origin text, regulated_at timestamptz,
    performed_at timestamptz, act text, patient_pseudonym text, patient_birth_year integer,
    doctor_rpps text, treating_doctor boolean, pdsa boolean, billed_codes text[],
    billed_amount numeric, invoice_ref text)
WHERE e.notification_id > %(after)s AND e.notification_id <= %(upto)s AND e.topic = ANY(%(topics)s)
"""

_INSERT_VOIDS = f"""
INSERT INTO encounter_fact_versions
SELECT p.encounter_id, e.originator_version, e.notification_id,
    (convert_from(e.state, 'UTF8')::jsonb->>'timestamp')::timestamptz,
    p.association, p.encounter_ref, p.regulation_origin, p.regulated_at, p.performed_at, p.act,
    p.patient_pseudonym, p.patient_birth_year, p.doctor_rpps, p.treating_doctor, p.pdsa,
    p.billed_codes, p.billed_amount, p.invoice_ref, true
FROM {EVENTS_TABLE} e
CROSS JOIN LATERAL (
    SELECT * FROM encounter_fact_versions v
    WHERE v.encounter_id = e.originator_id AND v.version < e.originator_version
    ORDER BY v.version DESC LIMIT 1) p
WHERE e.notification_id > %(after)s AND e.notification_id <= %(upto)s AND e.topic = %(topic)s
ORDER BY e.notification_id
"""

_INSERT_DECISIONS = f"""
INSERT INTO encounter_decisions
SELECT e.originator_id, e.originator_version, e.notification_id,
    t."timestamp", d.decided_at, d.paid_amount,
    array_to_string(d.paid_codes, '+'), array_to_string(d.rejected_codes, '+'), d.reason
FROM {EVENTS_TABLE} e
CROSS JOIN LATERAL jsonb_to_record(convert_from(e.state, 'UTF8')::jsonb)
    AS t("timestamp" timestamptz, decision jsonb)
CROSS JOIN LATERAL jsonb_to_record(t.decision) AS d(
    decided_at date, paid_amount numeric, paid_codes text[], rejected_codes text[], reason text)
WHERE e.notification_id > %(after)s AND e.notification_id <= %(upto)s AND e.topic = %(topic)s
"""


def position(conn: Any) -> int:
    row = conn.execute("SELECT position FROM projection_tracking WHERE name = %s", (NAME,)).fetchone()
    return int(row[0]) if row else 0


def catch_up(conn: Any, upto: int | None = None) -> tuple[int, int]:
    """Project the events after the tracked position; returns ``(from, to)`` positions.

    Concurrent callers serialise on the tracking row, so each event is projected exactly once.
    """
    with conn.transaction():
        conn.execute(
            "INSERT INTO projection_tracking (name, position) VALUES (%s, 0) "
            "ON CONFLICT (name) DO NOTHING", (NAME,)
        )
        after = int(conn.execute(
            "SELECT position FROM projection_tracking WHERE name = %s FOR UPDATE", (NAME,)
        ).fetchone()[0])
        if upto is None:
            upto = int(conn.execute(
                f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}"
            ).fetchone()[0])
        if upto <= after:
            return after, after
        _project(conn, after, upto, "encounter_fact_versions", "encounter_decisions")
        conn.execute(_INSERT_VOIDS, {"after": after, "upto": upto,
                                     "topic": get_topic(domain.Encounter.Voided)})
        conn.execute("UPDATE projection_tracking SET position = %s WHERE name = %s", (upto, NAME))
        return after, upto


def rebuild(conn: Any, connect: Callable[[], Any] | None = None, workers: int = 2
            ) -> tuple[int, int]:
    """Project the whole log again, from zero.

    The log is cut into ranges of ``RANGE_EVENTS`` positions, projected by ``workers``
    connections at once (each range in its own transaction) into staging tables; one final
    transaction then adds the voids, builds the indexes, swaps the staging tables in and sets the
    tracking position. Readers see the old projection until that commit, and a crash at any
    point leaves it intact (a new rebuild starts over).

    Args:
        conn: an open connection (autocommit), used for the final swap.
        connect: opens another connection to the same database (for the workers); without it
            the ranges are projected one after the other on ``conn``.
        workers: how many connections project at once.

    Returns:
        ``(0, position)``: the positions projected.
    """
    ddl = resources.files("ops").joinpath("sql/schema.sql").read_text(encoding="utf-8")
    upto = int(conn.execute(
        f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}").fetchone()[0])
    conn.execute("DROP TABLE IF EXISTS rebuild_fact_versions, rebuild_decisions")
    conn.execute("CREATE TABLE rebuild_fact_versions (LIKE encounter_fact_versions)")
    conn.execute("CREATE TABLE rebuild_decisions (LIKE encounter_decisions)")
    ranges = deque(pairwise([*range(0, upto, RANGE_EVENTS), upto]))

    def drain(c: Any) -> None:
        while True:
            try:
                after, until = ranges.popleft()  # atomic: each range is taken once
            except IndexError:
                return
            with c.transaction():
                _project(c, after, until, "rebuild_fact_versions", "rebuild_decisions")

    others = [connect() for _ in range(workers - 1)] if connect and len(ranges) > 1 else []
    try:
        with ThreadPoolExecutor(max_workers=1 + len(others)) as pool:
            list(pool.map(drain, [conn, *others]))
    finally:
        for c in others:
            c.close()
    with conn.transaction():
        conn.execute("LOCK TABLE projection_tracking IN EXCLUSIVE MODE")
        # Index builds sort in memory rather than in temporary files (the default is 64 MB).
        conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
        conn.execute("ALTER TABLE rebuild_fact_versions ADD PRIMARY KEY (encounter_id, version)")
        conn.execute(_into(_INSERT_VOIDS, "rebuild_fact_versions").replace(
            "FROM encounter_fact_versions v", "FROM rebuild_fact_versions v"),
            {"after": 0, "upto": upto, "topic": get_topic(domain.Encounter.Voided)})
        conn.execute("ALTER TABLE rebuild_decisions ADD PRIMARY KEY (encounter_id, version)")
        conn.execute("DROP VIEW IF EXISTS encounter_facts")
        conn.execute("DROP TABLE encounter_fact_versions, encounter_decisions")
        conn.execute("ALTER TABLE rebuild_fact_versions RENAME TO encounter_fact_versions")
        conn.execute("ALTER TABLE rebuild_decisions RENAME TO encounter_decisions")
        conn.execute("ALTER INDEX rebuild_fact_versions_pkey RENAME TO encounter_fact_versions_pkey")
        conn.execute("ALTER INDEX rebuild_decisions_pkey RENAME TO encounter_decisions_pkey")
        conn.execute(ddl[ddl.index("CREATE INDEX IF NOT EXISTS encounter_fact_versions_ref"):
                         ddl.index("CREATE TABLE IF NOT EXISTS encounter_decisions")])
        conn.execute(ddl[ddl.index("CREATE OR REPLACE VIEW encounter_facts"):])
        conn.execute("INSERT INTO projection_tracking (name, position) VALUES (%s, %s) "
                     "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position", (NAME, upto))
    return 0, upto


def _project(conn: Any, after: int, upto: int, facts_table: str, decisions_table: str) -> None:
    """The fact versions and decisions of the events in positions (after, upto] (voids apart:
    they copy the version before them, which must be there first)."""
    params = {"after": after, "upto": upto}
    conn.execute(_into(_INSERT_FACTS, facts_table),
                 {**params, "topics": [get_topic(domain.Encounter.Recorded),
                                       get_topic(domain.Encounter.Corrected)]})
    conn.execute(_into(_INSERT_DECISIONS, decisions_table),
                 {**params, "topic": get_topic(domain.Encounter.Decided)})


def _into(statement: str, table: str) -> str:
    """The same INSERT statement aimed at another table."""
    return re.sub(r"INSERT INTO \w+", f"INSERT INTO {table}", statement, count=1)
