"""What the ledger knows of the aggregates a block of rows touches, read in one query.

Reads the batch's own uncommitted writes too (same transaction). Ids go and come as their 16
bytes (``lookups.Ids``): far cheaper than ``UUID`` objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from eventsourcing.utils import get_topic
from psycopg import sql

from ledger import domain, lookups
from ledger.application import EVENTS_TABLE
from ledger.decide import Known
from ledger.ingest.events import T_CORRECTED, T_DECIDED, T_RECORDED, T_VOIDED

T_COMPLETED = get_topic(domain.ImportBatch.Completed)
FACT_TOPICS = (T_RECORDED, T_CORRECTED)

#: A stored event as a lookup fetches it: id (16 bytes), version, topic, state (or None).
Stored = tuple[bytes, int, str, bytes | None]

#: What the ledger knows of a block of decisions' encounters: the latest version of each known
#: encounter, and the SHA-256 of its recorded decisions (``decisions``).
KnownDecisions = tuple[dict[bytes, int], dict[bytes, frozenset[str]]]


#: The stored events of some aggregates, their states unless they are facts and the facts are
#: not wanted.
_EVENTS = sql.SQL(
    "SELECT uuid_send(originator_id), originator_version, topic, "
    "CASE WHEN %s OR NOT topic = ANY(%s) THEN state END FROM {} "
    "WHERE originator_id = ANY(%b) ORDER BY originator_id, originator_version"
).format(sql.Identifier(EVENTS_TABLE))
#: The versions stored of some aggregates, from the primary key alone.
_VERSIONS = sql.SQL(
    "SELECT uuid_send(originator_id), originator_version FROM {} "
    "WHERE originator_id = ANY(%b) ORDER BY originator_id, originator_version"
).format(sql.Identifier(EVENTS_TABLE))


def stored(conn: Any, ids: lookups.Ids, facts: bool = True) -> list[Stored]:
    """The stored events of the aggregates, each aggregate's in version order.

    Without the facts (a decisions file), the versions come first from the primary key alone (an
    index-only scan once the table is settled, ``lookups.settle``): an encounter at version 1
    holds only its ``Recorded`` event, and only the others are read from the table itself.
    """
    if not ids:
        return []
    cur = lookups.cursor(conn)
    firsts: list[Stored] = []
    if not facts:
        versions = cur.execute(_VERSIONS, (ids,)).fetchall()
        later = {oid for oid, version in versions if version > 1}
        firsts = [(oid, 1, T_RECORDED, None) for oid, _ in versions if oid not in later]
        if not later:
            return firsts
        ids = lookups.Ids.of(later)
    cur.execute(_EVENTS, (facts, list(FACT_TOPICS), ids))
    return firsts + cur.fetchall()


def known(events: list[Stored]) -> dict[bytes, Known]:
    """What the stored events say of each encounter (``decide.Known``)."""
    found: dict[bytes, Known] = {}
    for oid, version, topic, state in events:
        k = found.get(oid, Known())
        if topic in FACT_TOPICS:
            facts = orjson.loads(state) if state is not None else {}
            k = Known(version, orjson.dumps(facts.get("facts")) if facts else None,
                      facts.get("facts_sha256"), False, k.decisions)
        elif topic == T_VOIDED:
            k = Known(version, k.facts, k.facts_sha256, True, k.decisions)
        elif topic == T_DECIDED and state is not None:
            k = Known(version, k.facts, k.facts_sha256, k.voided,
                      k.decisions | {orjson.loads(state)["decision_sha256"]})
        else:
            k = Known(version, k.facts, k.facts_sha256, k.voided, k.decisions)
        found[oid] = k
    return found


def decisions(conn: Any, ids: lookups.Ids) -> KnownDecisions:
    """The latest version of each known encounter, and the SHA-256 of its recorded decisions
    (for a block of decisions: no ``Known`` per encounter)."""
    latest: dict[bytes, int] = {}
    recorded: dict[bytes, set[str]] = {}
    for oid, version, topic, state in stored(conn, ids, facts=False):
        latest[oid] = version
        if topic == T_DECIDED and state is not None:
            recorded.setdefault(oid, set()).add(orjson.loads(state)["decision_sha256"])
    return latest, {oid: frozenset(shas) for oid, shas in recorded.items()}


class Written:
    """The aggregates a batch has written events of so far, as a Bloom filter of fixed size.

    ``may_hold`` never misses an id that was ``add``-ed; it also names a few others (about one
    in 300 after four million ids). It lets a decisions file's lookups be read ahead on a
    second connection, which sees the ledger as it was before the batch: only the ids the batch
    may have written are read again on the batch's own connection.
    """

    _BITS = 1 << 27  # 16 MB
    _MASK = np.uint64(_BITS - 1)

    def __init__(self) -> None:
        self.bits = np.zeros(self._BITS // 8, np.uint8)

    def _slots(self, ids: bytes) -> tuple[np.ndarray, ...]:
        """Two bit positions per id, from its first and second half (aggregate ids are
        uuid5s: their bits are a SHA-1's, but for the version and variant bits left out)."""
        words = np.frombuffer(ids, "<u8").reshape(-1, 2)
        return words[:, 0] & self._MASK, (words[:, 1] >> np.uint64(8)) & self._MASK

    def add(self, ids: bytes) -> None:
        for slot in self._slots(ids):
            np.bitwise_or.at(self.bits, slot >> np.uint64(3),
                             np.left_shift(1, slot & np.uint64(7)).astype(np.uint8))

    def may_hold(self, ids: bytes) -> np.ndarray:
        """For each id, whether it may have been added (bool)."""
        found = np.ones(len(ids) // 16, bool)
        for slot in self._slots(ids):
            found &= ((self.bits[slot >> np.uint64(3)] >> (slot & np.uint64(7))) & 1) == 1
        return found


def decisions_seen(conn: Any, ids: lookups.Ids, ahead: KnownDecisions | None,
                   written: Written) -> KnownDecisions:
    """``decisions`` of a block as the batch's connection ``conn`` sees them, given ``ahead``
    (``decisions`` read before, on a connection that sees the ledger as it was before the
    batch): the ids the batch may have written (``written``) are read again on ``conn``."""
    if ahead is None:
        return decisions(conn, ids)
    latest, recorded = ahead
    every = ids.each()
    again = [oid for oid, mine in zip(every, written.may_hold(ids).tolist(), strict=True)
             if mine]
    if again:
        for oid in again:
            latest.pop(oid, None)
            recorded.pop(oid, None)
        now_latest, now_recorded = decisions(conn, lookups.Ids.of(again))
        latest.update(now_latest)
        recorded.update(now_recorded)
    return latest, recorded


def batch_completed(conn: Any, batch: bytes) -> tuple[int, dict[str, Any] | None]:
    """An import batch's version and its latest ``Completed`` event's state, if any."""
    version, completed = 0, None
    for _, v, topic, state in stored(conn, lookups.Ids(batch), facts=False):
        version = v
        if topic == T_COMPLETED and state is not None:
            completed = orjson.loads(state)
    return version, completed
