"""Reading what an audit extract needs from the ledger, in one consistent snapshot.

Everything is read in a single REPEATABLE READ transaction: the chain head, the association's
encounters (selected on the facts projection, which is caught up to that head first), their full
event histories, the rule-set events, and one streamed pass over the whole log that re-verifies the
chain and builds the Merkle tree whose audit paths prove the included events. Nothing of another
association is read into the bundle: only hashes of its events enter the Merkle computation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import psycopg

from audit.digest import Digest
from audit.records import IncludedEncounter, StoredEventRecord
from audit.verify import ChainBreak, scan_log
from ledger import domain, lookups
from ledger.application import EVENTS_TABLE
from ledger.chain import GENESIS
from ledger.errors import LedgerError
from ledger.store import EventWriter
from ledger.vocabulary import PARIS
from projections import facts_table
from projections.facts import EncounterFacts

_FACT_COLUMNS = """encounter_id::text, association, encounter_ref, regulation_origin, regulated_at,
    performed_at, act, doctor_rpps, treating_doctor, pdsa, patient_birth_year"""

_SELECT = """
SELECT encounter_id::text, encounter_ref, voided FROM (
    SELECT DISTINCT ON (encounter_id) * FROM encounter_fact_versions WHERE association = %s
    ORDER BY encounter_id, version DESC) v
WHERE (performed_at AT TIME ZONE 'Europe/Paris')::date BETWEEN %s AND %s
ORDER BY performed_at, encounter_ref
"""


class ExtractError(LedgerError):
    """The extract cannot be made (broken chain, unknown association, no rule set...)."""


class ChainBrokenError(ExtractError):
    """The ledger's chain does not verify: no extract is issued from a tampered log."""

    def __init__(self, brk: ChainBreak):
        super().__init__(f"chain broken at position {brk.position} ({brk.kind}): {brk.message}")
        self.brk = brk


@dataclass
class Collected:
    """The snapshot an extract is made of."""

    position: int
    head_link: bytes
    merkle_root: bytes
    encounters: list[IncludedEncounter]
    rule_events: dict[str, StoredEventRecord]
    paths: dict[int, list[bytes]]
    context: list[EncounterFacts]
    missing_refs: list[str]
    digest: Digest | None = None  # set by the extract once its bundle is in place


def chain_pending(conn: Any) -> None:
    """Chain events written by another path (the library's ``save``) and not chained yet."""
    row = conn.execute(
        f"SELECT (SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}), "
        "(SELECT coalesce(max(notification_id), 0) FROM claims_chain)").fetchone()
    if int(row[0]) > int(row[1]):
        with conn.transaction():
            EventWriter(conn).lock()


def collect(
    conn: Any, association: str, date_from: date, date_to: date,
    rule_sets: Sequence[Any], encounter_refs: Sequence[str] | None, attempts: int = 5,
) -> Collected:
    """Read the snapshot of an extract, retrying while writers move the log under it.

    Args:
        conn: an open autocommit psycopg connection (not in a transaction).
        association: the association's code.
        date_from: first act date (Paris), included.
        date_to: last act date (Paris), included.
        rule_sets: the rule sets, already published in the ledger.
        encounter_refs: only these references (None: every encounter of the period).
        attempts: snapshots to try while concurrent writers move the head.

    Returns:
        The ``Collected`` snapshot. Nothing is recorded: the caller records its digest
        (``insert_digest``) once the extract made of it exists.

    Raises:
        ChainBrokenError: the chain does not verify up to the head.
        ExtractError: the snapshot could not be taken consistently.
    """
    for _ in range(attempts):
        chain_pending(conn)
        facts_table.catch_up(conn)
        try:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                got = _collect_in_snapshot(conn, association, date_from, date_to, rule_sets,
                                           encounter_refs)
                if got is not None:
                    return got
        except psycopg.errors.SerializationFailure:
            pass
    raise ExtractError("the ledger kept changing while the extract was read; try again")


def _collect_in_snapshot(
    conn: Any, association: str, date_from: date, date_to: date, rule_sets: Sequence[Any],
    encounter_refs: Sequence[str] | None,
) -> Collected | None:
    row = conn.execute(
        "SELECT notification_id, link FROM claims_chain ORDER BY notification_id DESC LIMIT 1"
    ).fetchone()
    position, head_link = (int(row[0]), bytes(row[1])) if row else (0, GENESIS)
    last = int(conn.execute(
        f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}").fetchone()[0])
    if last != position or facts_table.position(conn) < position:
        return None  # a writer got in between: take the snapshot again
    encounters, missing = _select(conn, association, date_from, date_to, encounter_refs)
    with lookups.by_primary_key(conn):
        _load_events(conn, encounters, position)
    rule_events = _rule_events(conn, rule_sets, position)
    included = [e for enc in encounters for e in enc.events] + list(rule_events.values())
    _load_links(conn, included)
    scan = scan_log(conn, upto=position, targets=[e.position for e in included])
    if scan.report.first_break is not None:
        raise ChainBrokenError(scan.report.first_break)
    if position and scan.report.head_link != head_link.hex():
        raise ExtractError("the chain head read differs from the recomputed one")
    _load_facts(conn, encounters)
    context = _context(conn, encounters, date_from, date_to)
    return Collected(position, head_link, scan.merkle_root, encounters, rule_events, scan.paths,
                     context, missing)


def _select(
    conn: Any, association: str, date_from: date, date_to: date,
    refs: Sequence[str] | None,
) -> tuple[list[IncludedEncounter], list[str]]:
    rows = conn.execute(_SELECT, (association, date_from, date_to)).fetchall()
    found = [IncludedEncounter(r[0], r[1], bool(r[2])) for r in rows]
    if refs is None:
        return found, []
    wanted = list(dict.fromkeys(refs))
    keep = set(wanted)
    chosen = [e for e in found if e.encounter_ref in keep]
    have = {e.encounter_ref for e in chosen}
    return chosen, [r for r in wanted if r not in have]


def _load_events(conn: Any, encounters: list[IncludedEncounter], upto: int) -> None:
    by_id = {UUID(e.encounter_id): e for e in encounters}
    ids = list(by_id)
    for i in range(0, len(ids), 5000):
        rows = conn.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {EVENTS_TABLE} WHERE originator_id = ANY(%s) AND notification_id <= %s "
            "ORDER BY originator_id, originator_version", (ids[i:i + 5000], upto)).fetchall()
        for pos, oid, ver, topic, state in rows:
            by_id[oid].events.append(StoredEventRecord(
                int(pos), oid, int(ver), topic, bytes(state).decode("utf-8")))


def _rule_events(conn: Any, rule_sets: Sequence[Any], upto: int) -> dict[str, StoredEventRecord]:
    """The stored event publishing each rule set's exact content (latest with that hash)."""
    out: dict[str, StoredEventRecord] = {}
    for rs in rule_sets:
        oid = domain.rule_set_id(rs.name)
        rows = conn.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {EVENTS_TABLE} WHERE originator_id = %s AND notification_id <= %s "
            "ORDER BY originator_version DESC", (oid, upto)).fetchall()
        for pos, rid, ver, topic, state in rows:
            text = bytes(state).decode("utf-8")
            if json.loads(text).get("content_sha256") == rs.content_hash:
                out[rs.name] = StoredEventRecord(int(pos), rid, int(ver), topic, text)
                break
        else:
            raise ExtractError(f"rule set {rs.name!r} with hash {rs.content_hash} is not "
                               "published in the ledger")
    return out


def _load_links(conn: Any, events: list[StoredEventRecord]) -> None:
    wanted = sorted({p for e in events for p in (e.position, e.position - 1) if p > 0})
    links = {0: GENESIS}
    for i in range(0, len(wanted), 10000):
        rows = conn.execute("SELECT notification_id, link FROM claims_chain "
                            "WHERE notification_id = ANY(%s)", (wanted[i:i + 10000],)).fetchall()
        links.update({int(p): bytes(li) for p, li in rows})
    for e in events:
        e.link_before = links.get(e.position - 1, b"")
        e.link = links.get(e.position, b"")


def _load_facts(conn: Any, encounters: list[IncludedEncounter]) -> None:
    live = {e.encounter_id: e for e in encounters if not e.voided}
    ids = list(live)
    for i in range(0, len(ids), 5000):
        rows = conn.execute(f"SELECT {_FACT_COLUMNS} FROM encounter_facts "
                            "WHERE encounter_id = ANY(%s::uuid[])", (ids[i:i + 5000],)).fetchall()
        for r in rows:
            live[r[0]].facts = EncounterFacts(*r)


def _context(conn: Any, encounters: list[IncludedEncounter], date_from: date,
             date_to: date) -> list[EncounterFacts]:
    """The included doctors' encounters in the ISO weeks of the period (weekly caps need them)."""
    doctors = sorted({e.facts.doctor_rpps for e in encounters if e.facts})
    if not doctors:
        return []
    start = datetime.combine(date_from - timedelta(days=date_from.weekday()), time(), PARIS)
    end = datetime.combine(date_to + timedelta(days=7 - date_to.weekday()), time(), PARIS)
    rows = conn.execute(
        f"SELECT {_FACT_COLUMNS} FROM encounter_facts WHERE doctor_rpps = ANY(%s) "
        "AND performed_at >= %s AND performed_at < %s ORDER BY performed_at, encounter_ref",
        (doctors, start, end)).fetchall()
    return [EncounterFacts(*r) for r in rows]
