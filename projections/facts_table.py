"""The encounter-facts projection: typed tables rebuilt from the event log, set-based.

``catch_up`` projects the events after the stored tracking position, in one transaction that also
moves the position (exactly once: a crash leaves both or neither). PostgreSQL reads the events'
JSON itself, so no event is decoded in Python: this is what makes a rebuild fast. ``rebuild``
empties the tables and catches up from zero.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic

from ledger import domain
from ledger.application import EVENTS_TABLE

NAME = "encounter_facts"

_FACT_COLUMNS = """
    (j->'facts'->>'association'), (j->'facts'->>'encounter_ref'),
    (j->'facts'->>'regulation_origin'), (j->'facts'->>'regulated_at')::timestamptz,
    (j->'facts'->>'performed_at')::timestamptz, (j->'facts'->>'act'),
    (j->'facts'->>'patient_pseudonym'), (j->'facts'->>'patient_birth_year')::integer,
    (j->'facts'->>'doctor_rpps'), (j->'facts'->>'treating_doctor')::boolean,
    (j->'facts'->>'pdsa')::boolean,
    array_to_string(ARRAY(SELECT jsonb_array_elements_text(j->'facts'->'billed_codes')), '+'),
    (j->'facts'->>'billed_amount')::numeric, (j->'facts'->>'invoice_ref')
"""

_INSERT_FACTS = f"""
INSERT INTO encounter_fact_versions (
    encounter_id, version, notification_id, recorded_at, association, encounter_ref,
    regulation_origin, regulated_at, performed_at, act, patient_pseudonym, patient_birth_year,
    doctor_rpps, treating_doctor, pdsa, billed_codes, billed_amount, invoice_ref, voided)
SELECT e.originator_id, e.originator_version, e.notification_id, (j->>'timestamp')::timestamptz,
    {_FACT_COLUMNS}, false
FROM {EVENTS_TABLE} e, LATERAL (SELECT convert_from(e.state, 'UTF8')::jsonb AS j) s
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
    (j->>'timestamp')::timestamptz, (j->'decision'->>'decided_at')::date,
    (j->'decision'->>'paid_amount')::numeric,
    array_to_string(ARRAY(SELECT jsonb_array_elements_text(j->'decision'->'paid_codes')), '+'),
    array_to_string(ARRAY(SELECT jsonb_array_elements_text(j->'decision'->'rejected_codes')), '+'),
    j->'decision'->>'reason'
FROM {EVENTS_TABLE} e, LATERAL (SELECT convert_from(e.state, 'UTF8')::jsonb AS j) s
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
        params = {"after": after, "upto": upto}
        conn.execute(_INSERT_FACTS, {**params, "topics": [
            get_topic(domain.Encounter.Recorded), get_topic(domain.Encounter.Corrected)]})
        conn.execute(_INSERT_VOIDS, {**params, "topic": get_topic(domain.Encounter.Voided)})
        conn.execute(_INSERT_DECISIONS, {**params, "topic": get_topic(domain.Encounter.Decided)})
        conn.execute("UPDATE projection_tracking SET position = %s WHERE name = %s", (upto, NAME))
        return after, upto


def rebuild(conn: Any) -> tuple[int, int]:
    """Empty the projection's tables and project the whole log again."""
    with conn.transaction():
        conn.execute("LOCK TABLE projection_tracking IN EXCLUSIVE MODE")
        conn.execute("TRUNCATE encounter_fact_versions, encounter_decisions")
        conn.execute("DELETE FROM projection_tracking WHERE name = %s", (NAME,))
    return catch_up(conn)
