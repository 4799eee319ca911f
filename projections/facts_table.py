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
from typing import Any, TypeVar

import psycopg
from eventsourcing.utils import get_topic

from ledger import domain, layout
from ledger.application import EVENTS_TABLE

NAME = "encounter_facts"
#: Log positions per unit of rebuild work. The ranges go to whichever connection is free, so
#: both stay busy to the end however the kinds of events are spread over the log (a national
#: ingest writes a year of encounters, then a year of decisions, cheaper to parse;
#: docs/decisions.md: "Rebuild by set-based statements, ranges shared by two connections").
RANGE_EVENTS = 100_000
#: Memory for the index builds at the end of a rebuild (PostgreSQL takes only what it needs).
INDEX_BUILD_MEMORY = "256MB"

# One JSON parse per event, all fields extracted at once by jsonb_to_record (a parse inside a
# subquery would be inlined into every field reference and repeated; docs/decisions.md: "One
# JSON parse per event").


def _cut(payload: str) -> str:
    """The lateral joins that give an event's payload object (``t.payload``, jsonb) and its
    time (``t.recorded_at``), cut out of the stored bytes when the state is laid out as the
    ledger writes it, so that only the payload, not the whole state, is parsed.

    The layout: the state starts with ``{"timestamp":"``, and the payload object comes before
    the first ``"provenance":``, followed by its ``_sha256`` key. The cut is sound on that
    layout: a JSON string holds no unescaped ``"``, so ``"facts":{`` and ``},"facts_sha256":"``
    can only be structure; nothing before the payload is an object, and a payload holds no
    object. Any other state (another writer's key order or spacing) is parsed whole. The
    positions are computed once a row (``OFFSET 0`` keeps the planner from copying them into
    each reference); the cut takes less CPU than parsing the whole state (docs/decisions.md:
    "Rebuild: payload cut out of the stored bytes").
    """
    open_at = len(f'"{payload}":{{')
    return f"""
CROSS JOIN LATERAL (
    SELECT position('"{payload}":{{'::bytea IN e.state) + {open_at - 1} AS a,
        position('}},"{payload}_sha256":"'::bytea IN e.state) AS b,
        position('"provenance":'::bytea IN e.state) AS c,
        position('"'::bytea IN substring(e.state FROM 15 FOR 40)) AS q
    OFFSET 0) p
CROSS JOIN LATERAL (SELECT
    CASE WHEN p.a > {open_at - 1} AND p.b > p.a AND p.c > p.b
        THEN convert_from(substring(e.state FROM p.a FOR p.b - p.a + 1), 'UTF8')::jsonb
        ELSE convert_from(e.state, 'UTF8')::jsonb -> '{payload}' END AS payload,
    CASE WHEN substring(e.state FOR 14) = '{{"timestamp":"'::bytea AND p.q > 1
        THEN convert_from(substring(e.state FROM 15 FOR p.q - 1), 'UTF8')::timestamptz
        ELSE (convert_from(e.state, 'UTF8')::jsonb ->> 'timestamp')::timestamptz END
        AS recorded_at) t"""


_INSERT_FACTS = f"""
INSERT INTO encounter_fact_versions (
    encounter_id, version, notification_id, recorded_at, association, encounter_ref,
    regulation_origin, regulated_at, performed_at, act, patient_pseudonym, patient_birth_year,
    doctor_rpps, treating_doctor, pdsa, billed_codes, billed_amount, invoice_ref, voided)
SELECT e.originator_id, e.originator_version, e.notification_id, t.recorded_at,
    f.association, f.encounter_ref, f.regulation_origin, f.regulated_at, f.performed_at, f.act,
    f.patient_pseudonym, f.patient_birth_year, f.doctor_rpps, f.treating_doctor, f.pdsa,
    array_to_string(f.billed_codes, '+'), f.billed_amount, f.invoice_ref, false
FROM {EVENTS_TABLE} e{_cut("facts")}
CROSS JOIN LATERAL jsonb_to_record(t.payload) AS f({layout.record_columns(domain.EncounterFacts)})
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
    t.recorded_at, d.decided_at, d.paid_amount,
    array_to_string(d.paid_codes, '+'), array_to_string(d.rejected_codes, '+'), d.reason
FROM {EVENTS_TABLE} e{_cut("decision")}
CROSS JOIN LATERAL jsonb_to_record(t.payload) AS d({layout.record_columns(domain.Decision)})
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
    connections at once (each range in its own transaction) into staging tables, whose indexes
    the same connections then build at once. One final transaction adds the voids, swaps the
    staging tables in and sets the tracking position. Readers see the old projection until that
    commit, and a crash at any point leaves it intact (a new rebuild starts over).

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
    conn.execute(f"DROP TABLE IF EXISTS {', '.join(_STAGING.values())}")
    conn.execute("DELETE FROM projection_alarms WHERE name = %s", (NAME,))
    for table, staging in _STAGING.items():
        # Autovacuum kept off the staging tables until the swap: it would take them between
        # the index builds, and the swap's ALTER would wait for it till the deadlock check
        # cancels autovacuum (docs/decisions.md: "Autovacuum off the rebuild's staging tables").
        conn.execute(f"CREATE TABLE {staging} (LIKE {table}) WITH (autovacuum_enabled = off)")
    ranges = list(pairwise([*range(0, upto, RANGE_EVENTS), upto]))
    others = [connect() for _ in range(workers - 1)] if connect and len(ranges) > 1 else []
    try:
        _shared([conn, *others], ranges, lambda c, span: _project(
            c, *span, _STAGING["encounter_fact_versions"], _STAGING["encounter_decisions"]))
        _shared([conn, *others], _staging_indexes(ddl), _build_index)
    finally:
        for c in others:
            c.close()
    with conn.transaction():
        conn.execute("LOCK TABLE projection_tracking IN EXCLUSIVE MODE")
        versions = _STAGING["encounter_fact_versions"]
        conn.execute(_into(_INSERT_VOIDS, versions).replace(
            "FROM encounter_fact_versions v", f"FROM {versions} v"),
            {"after": 0, "upto": upto, "topic": get_topic(domain.Encounter.Voided)})
        conn.execute("DROP VIEW IF EXISTS encounter_facts")
        conn.execute(f"DROP TABLE {', '.join(_STAGING)}")
        for table, staging in _STAGING.items():
            conn.execute(f"ALTER TABLE {staging} ADD CONSTRAINT {staging}_pkey "
                         f"PRIMARY KEY USING INDEX {staging}_pkey")
            conn.execute(f"ALTER TABLE {staging} RENAME TO {table}")
            conn.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
            indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s",
                                   (table,)).fetchall()
            for (index,) in indexes:
                conn.execute(f"ALTER INDEX {index} RENAME TO {index.replace(staging, table, 1)}")
        conn.execute(ddl[ddl.index("CREATE OR REPLACE VIEW encounter_facts"):])
        conn.execute("INSERT INTO projection_tracking (name, position) VALUES (%s, %s) "
                     "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position", (NAME, upto))
    return 0, upto


#: The projection's tables and the staging tables a rebuild fills in their place.
_STAGING = {"encounter_fact_versions": "rebuild_fact_versions",
            "encounter_decisions": "rebuild_decisions"}


T = TypeVar("T")


def _shared(conns: list[Any], tasks: list[T], run: Callable[[Any, T], None]) -> None:
    """Run each task once, in its own transaction, on whichever connection is free (all of them
    at once, so each stays busy to the end however long the tasks are)."""
    queue = deque(tasks)

    def drain(c: Any) -> None:
        while True:
            try:
                task = queue.popleft()  # atomic: each task is taken once
            except IndexError:
                return
            with c.transaction():
                run(c, task)

    with ThreadPoolExecutor(max_workers=len(conns)) as pool:
        list(pool.map(drain, conns))


def _staging_indexes(ddl: str) -> list[str]:
    """The indexes of the staging tables, named after the projection's own with the staging
    table's name (the final swap renames them): the schema's other indexes on them first (the
    reference index sorts texts, the longest build), then each table's primary key (made a
    constraint at the swap) (docs/decisions.md: "Rebuild: staging indexes built at once")."""
    others = ddl[ddl.index("CREATE INDEX IF NOT EXISTS encounter_fact_versions_ref"):
                 ddl.index("CREATE TABLE IF NOT EXISTS encounter_decisions")]
    for table, staging in _STAGING.items():
        others = others.replace(table, staging)
    keys = [f"CREATE UNIQUE INDEX {s}_pkey ON {s} (encounter_id, version)"
            for s in _STAGING.values()]
    return [*(i.strip() for i in others.split(";") if i.strip()), *keys]


def _build_index(conn: Any, statement: str) -> None:
    # In memory rather than in temporary files (the default is 64 MB); no parallel workers of
    # PostgreSQL's own: the rebuild's connections already build one index each at once.
    conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    conn.execute("SET LOCAL max_parallel_maintenance_workers = 0")
    conn.execute(statement)


def _project(conn: Any, after: int, upto: int, facts_table: str, decisions_table: str) -> None:
    """The fact versions and decisions of the events in positions (after, upto] (voids apart:
    they copy the version before them, which must be there first).

    An event the statements cannot project (malformed JSON, a missing or mistyped field) does
    not stop the others: the range is halved until that event stands alone, and it is left out
    with an alarm (``projection_alarms``: its position and PostgreSQL's reason)."""
    try:
        with conn.transaction():
            _project_range(conn, after, upto, facts_table, decisions_table)
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
        if upto - after == 1:
            conn.execute("INSERT INTO projection_alarms (name, position, reason) "
                         "VALUES (%s, %s, %s) ON CONFLICT (name, position) DO UPDATE "
                         "SET reason = excluded.reason, recorded_at = now()",
                         (NAME, upto, (str(exc).strip().splitlines() or ["?"])[0]))
            return
        middle = (after + upto) // 2
        _project(conn, after, middle, facts_table, decisions_table)
        _project(conn, middle, upto, facts_table, decisions_table)


def _project_range(conn: Any, after: int, upto: int, facts_table: str,
                   decisions_table: str) -> None:
    params = {"after": after, "upto": upto}
    conn.execute(_into(_INSERT_FACTS, facts_table),
                 {**params, "topics": [get_topic(domain.Encounter.Recorded),
                                       get_topic(domain.Encounter.Corrected)]})
    conn.execute(_into(_INSERT_DECISIONS, decisions_table),
                 {**params, "topic": get_topic(domain.Encounter.Decided)})


def alarms(conn: Any) -> list[tuple[int, str]]:
    """The events the facts projection left out: ``(position, reason)``, in log order."""
    return [(int(p), r) for p, r in conn.execute(
        "SELECT position, reason FROM projection_alarms WHERE name = %s ORDER BY position",
        (NAME,))]


def _into(statement: str, table: str) -> str:
    """The same INSERT statement aimed at another table."""
    return re.sub(r"INSERT INTO \w+", f"INSERT INTO {table}", statement, count=1)
