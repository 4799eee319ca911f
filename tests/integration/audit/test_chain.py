"""The hash chain on a real PostgreSQL: verified, then tampered with by a superuser."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from audit.digest import list_digests, record_digest
from audit.verify import verify_chain
from ledger.application import EVENTS_TABLE
from tests.integration.audit.conftest import B_REFS


def _as_superuser(conn: Any, statement: str, params: Any = None) -> None:
    """Run one statement with the append-only triggers disabled, as only a superuser can."""
    with conn.transaction():
        conn.execute(f"ALTER TABLE {EVENTS_TABLE} DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE claims_chain DISABLE TRIGGER USER")
        conn.execute(statement, params)
        conn.execute(f"ALTER TABLE {EVENTS_TABLE} ENABLE TRIGGER USER")
        conn.execute("ALTER TABLE claims_chain ENABLE TRIGGER USER")


def _position_of_b(conn: Any) -> int:
    return int(conn.execute(
        f"SELECT notification_id FROM {EVENTS_TABLE} "
        "WHERE convert_from(state, 'UTF8')::jsonb->'facts'->>'encounter_ref' = %s",
        (B_REFS[1],)).fetchone()[0])


def test_untouched_chain_verifies(two_associations: Any) -> None:
    conn = two_associations
    report = verify_chain(conn)
    last = conn.execute(f"SELECT max(notification_id) FROM {EVENTS_TABLE}").fetchone()[0]
    assert report.ok and report.first_break is None
    assert report.head_position == report.events_checked == last
    stored = conn.execute("SELECT link FROM claims_chain WHERE notification_id = %s",
                          (last,)).fetchone()[0]
    assert report.head_link == bytes(stored).hex()
    assert verify_chain(conn, hash_in_client=True) == report


def test_changed_event_is_named_by_position(two_associations: Any) -> None:
    conn = two_associations
    pos = _position_of_b(conn)
    _as_superuser(conn, f"UPDATE {EVENTS_TABLE} SET state = convert_to(replace("
                  "convert_from(state, 'UTF8'), '35.00', '99.00'), 'UTF8') "
                  "WHERE notification_id = %s", (pos,))
    report = verify_chain(conn)
    assert not report.ok and report.first_break is not None
    assert (report.first_break.position, report.first_break.kind) == (pos, "link mismatch")
    assert report.head_position == pos - 1
    assert f"position {pos}" in report.first_break.message


def test_removed_event_and_removed_position(two_associations: Any) -> None:
    conn = two_associations
    pos = _position_of_b(conn)
    _as_superuser(conn, f"DELETE FROM {EVENTS_TABLE} WHERE notification_id = %s", (pos,))
    brk = verify_chain(conn).first_break
    assert brk is not None and (brk.position, brk.kind) == (pos, "missing event")
    _as_superuser(conn, "DELETE FROM claims_chain WHERE notification_id = %s", (pos,))
    brk = verify_chain(conn).first_break
    assert brk is not None and (brk.position, brk.kind) == (pos, "gap")


def test_unchained_tail_is_counted_not_judged(two_associations: Any) -> None:
    conn = two_associations
    conn.execute(f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
                 "SELECT gen_random_uuid(), 1, 'x:Y', '\\x7b7d'::bytea")
    report = verify_chain(conn)
    assert report.ok and report.unchained == 1


def test_digests_pin_the_end_of_the_log(two_associations: Any) -> None:
    conn = two_associations
    digest = record_digest(conn, actor="auditor", note="monthly")
    assert list_digests(conn)[-1] == digest
    assert verify_chain(conn).digests_checked == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE claims_chain_digests SET note = 'x'")
    # Cutting the last event and its link leaves a consistent chain, but not the digest's.
    _as_superuser(conn, f"DELETE FROM {EVENTS_TABLE} WHERE notification_id = %s",
                  (digest.position,))
    _as_superuser(conn, "DELETE FROM claims_chain WHERE notification_id = %s",
                  (digest.position,))
    brk = verify_chain(conn).first_break
    assert brk is not None and (brk.position, brk.kind) == (digest.position, "digest mismatch")
