"""Verifying the hash chain against the stored events, in one streamed pass.

Every link is recomputed from the events in position order (``ledger.chain``) and compared
with the stored one. The first position where the log and its chain disagree is named: an event
whose stored bytes changed (link mismatch), an event without its link, a link without its event, a
missing position (gap), a recorded digest (``claims_chain_digests``) that the recomputed chain
no longer matches (the chain was rewritten, or events were cut off its end), or a seal
(``ledger.seal``) that does not hold under the ledger's key. Events past the chain head (not
chained) and past the last seal (not sealed) are counted: written by another path than the
ledger, they are alarms for the caller to raise.

Events and links are read with two server-side cursors in one REPEATABLE READ snapshot, in chunks,
so memory does not grow with the log. The SHA-256 of each event's state is computed by PostgreSQL
(``pg_catalog.sha256``) unless ``hash_in_client`` is set; everything else is hashed here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from psycopg import pq

from audit.merkle import MerkleBuilder, leaf_hash
from ledger.application import EVENTS_TABLE
from ledger.chain import GENESIS, event_digest_from_hash
from ledger.seal import Sealer

#: Rows fetched per round trip from each server-side cursor.
CHUNK_ROWS = 10_000


class ChainBreak(NamedTuple):
    """The first place where the log and its chain disagree."""

    position: int
    # "link mismatch", "missing link", "missing event", "gap", "digest mismatch", "seal mismatch"
    kind: str
    message: str


@dataclass(frozen=True)
class ChainReport:
    """What ``verify_chain`` found.

    Attributes:
        ok: True when every link up to the head matches its event.
        events_checked: events whose link was recomputed and matched.
        head_position: the last verified position (the chain head when ``ok``).
        head_link: its link, hex.
        unchained: events after the chain head that have no link yet.
        unsealed: events after the last seal (the unchained ones included).
        seals_checked: seals checked under the ledger's key (their positions are checked
            without it).
        digests_checked: recorded digests compared with the recomputed chain.
        first_break: what broke, or None.
    """

    ok: bool
    events_checked: int
    head_position: int
    head_link: str
    unchained: int = 0
    unsealed: int = 0
    seals_checked: int = 0
    digests_checked: int = 0
    first_break: ChainBreak | None = None

    @property
    def whole(self) -> bool:
        """The chain holds, and covers and seals every event: the log can be trusted."""
        return self.ok and not self.unchained and not self.unsealed


@dataclass
class LogScan:
    """A chain check plus the Merkle root and audit paths over positions 1..head."""

    report: ChainReport
    merkle_root: bytes = b""
    paths: dict[int, list[bytes]] = field(default_factory=dict)


class DigestRow(NamedTuple):
    position: int
    link: bytes
    merkle_root: bytes | None
    recorded_at: Any


@contextmanager
def snapshot(conn: Any, *, read_only: bool = True) -> Iterator[None]:
    """A REPEATABLE READ transaction, unless ``conn`` is already in one (then it is used)."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        yield
        return
    with conn.transaction():
        mode = " READ ONLY" if read_only else ""
        conn.execute(f"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ{mode}")
        yield


def _stream(conn: Any, name: str, query: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    cur = conn.cursor(name=name)
    cur.itersize = CHUNK_ROWS
    try:
        cur.execute(query, params)
        yield from cur
    finally:
        cur.close()


def _stored_digests(conn: Any) -> list[DigestRow]:
    exists = conn.execute("SELECT to_regclass('claims_chain_digests')").fetchone()[0]
    if exists is None:
        return []
    rows = conn.execute(
        "SELECT position, link, merkle_root, recorded_at FROM claims_chain_digests "
        "ORDER BY position, recorded_at"
    ).fetchall()
    return [DigestRow(int(p), bytes(li), bytes(r) if r else None, t) for p, li, r, t in rows]


def _stored_seals(conn: Any, after: int = 0) -> dict[int, bytes]:
    if conn.execute("SELECT to_regclass('claims_chain_seals')").fetchone()[0] is None:
        return {}
    return {int(p): bytes(s) for p, s in conn.execute(
        "SELECT notification_id, seal FROM claims_chain_seals WHERE notification_id > %s "
        "ORDER BY notification_id", (after,))}


def verify_chain(conn: Any, *, hash_in_client: bool = False,
                 sealer: Sealer | None = None) -> ChainReport:
    """Recompute every link from the stored events and name the first broken position.

    Args:
        conn: an open psycopg connection to the ledger database (autocommit, not in a
            transaction, or inside one the caller opened at REPEATABLE READ).
        hash_in_client: hash each event's state here rather than in PostgreSQL (reads the
            full states: slower, trusts nothing the server computes).
        sealer: checks each seal under the ledger's key (without it, only where seals are).

    Returns:
        A ``ChainReport``: OK with the head position and link, or the first break.
    """
    return scan_log(conn, hash_in_client=hash_in_client, sealer=sealer).report


def scan_log(
    conn: Any,
    *,
    upto: int | None = None,
    targets: Sequence[int] = (),
    hash_in_client: bool = False,
    sealer: Sealer | None = None,
    since: tuple[int, bytes] | None = None,
) -> LogScan:
    """Check the chain up to ``upto`` (the head by default) and build the Merkle tree over it.

    Args:
        conn: an open psycopg connection (see ``verify_chain``).
        upto: the last position to check (default: the whole log).
        targets: positions whose Merkle audit paths are wanted.
        hash_in_client, sealer: see ``verify_chain``.
        since: a position and its link already verified: only the positions after it are
            checked (no Merkle tree, no digest's Merkle root).

    Returns:
        A ``LogScan``; its root and paths are meaningful only when ``report.ok``.
    """
    with snapshot(conn):
        limit = upto if upto is not None else 2**62
        start = since[0] if since else 0
        digests = [d for d in _stored_digests(conn) if d.position > start]
        state_expr = "e.state" if hash_in_client else "pg_catalog.sha256(e.state)"
        events = _stream(
            conn, "claims_verify_events",
            f"SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, "
            f"{state_expr} FROM {EVENTS_TABLE} e WHERE e.notification_id > %s AND "
            "e.notification_id <= %s ORDER BY e.notification_id", (start, limit))
        links = _stream(
            conn, "claims_verify_links",
            "SELECT notification_id, link FROM claims_chain WHERE notification_id > %s AND "
            "notification_id <= %s ORDER BY notification_id", (start, limit))
        return _Scanner(digests, [p - 1 for p in targets], hash_in_client,
                        _stored_seals(conn, start), sealer, since).run(events, links)


class _Scanner:
    def __init__(self, digests: list[DigestRow], targets: list[int], hash_in_client: bool,
                 seals: dict[int, bytes], sealer: Sealer | None,
                 since: tuple[int, bytes] | None = None):
        self.digests = digests
        self.by_position: dict[int, list[DigestRow]] = {}
        for d in digests:
            self.by_position.setdefault(d.position, []).append(d)
        self.merkle = MerkleBuilder(targets)
        # From a verified position on, no Merkle tree: it would need every leaf before it.
        self.want_merkle = since is None and (bool(targets)
                                              or any(d.merkle_root for d in digests))
        self.hash_in_client = hash_in_client
        self.position, self.link = since or (0, GENESIS)
        self.checked = 0
        self.digests_checked = 0
        self.seals, self.sealer = seals, sealer
        self.sealed = self.position  # the last position sealed (a verified one was)
        self.seals_checked = 0

    def _report(self, brk: ChainBreak | None = None, unchained: int = 0) -> LogScan:
        report = ChainReport(
            ok=brk is None, events_checked=self.checked, head_position=self.position,
            head_link=self.link.hex(), unchained=unchained,
            unsealed=self.position + unchained - self.sealed, seals_checked=self.seals_checked,
            digests_checked=self.digests_checked, first_break=brk)
        if brk is not None or not self.want_merkle:
            return LogScan(report)
        root, paths = self.merkle.finish()
        return LogScan(report, root, {i + 1: p for i, p in paths.items()})

    def run(self, events: Iterator[tuple[Any, ...]], links: Iterator[tuple[Any, ...]]) -> LogScan:
        ev = next(events, None)
        ln = next(links, None)
        while ev is not None and ln is not None:
            pos_e, pos_l = int(ev[0]), int(ln[0])
            pos = min(pos_e, pos_l)
            if pos != self.position + 1:
                return self._report(ChainBreak(
                    self.position + 1, "gap",
                    f"position {self.position + 1} is missing: neither its event nor its link is "
                    f"stored (the next stored position is {pos})"))
            if pos_e < pos_l:
                return self._report(ChainBreak(
                    pos, "missing link", f"the event at position {pos} has no chain link, "
                    "but later positions do (a link was removed)"))
            if pos_l < pos_e:
                return self._report(ChainBreak(
                    pos, "missing event", f"the chain has a link at position {pos} but no event "
                    "is stored there (an event was removed)"))
            brk = self._step(ev, bytes(ln[1]))
            if brk is not None:
                return self._report(brk)
            ev = next(events, None)
            ln = next(links, None)
        if ln is not None:
            return self._report(ChainBreak(
                int(ln[0]), "missing event", f"the chain has a link at position {int(ln[0])} but "
                "no event is stored there (events were removed from the end of the log)"))
        unchained = 0
        while ev is not None:
            unchained += 1
            ev = next(events, None)
        late = [d for d in self.digests if d.position > self.position]
        if late:
            d = late[0]
            return self._report(ChainBreak(
                d.position, "digest mismatch",
                f"a digest recorded at {d.recorded_at} names position {d.position}, but the chain "
                f"ends at position {self.position} (events were removed from the end)"), unchained)
        late_seal = max(self.seals, default=0)
        if late_seal > self.position:
            return self._report(ChainBreak(
                late_seal, "seal mismatch", f"a seal names position {late_seal}, but the chain "
                f"ends at position {self.position} (events were removed from the end)"),
                unchained)
        return self._report(None, unchained)

    def _step(self, ev: tuple[Any, ...], stored: bytes) -> ChainBreak | None:
        pos, oid, version, topic, state = ev
        state_hash = hashlib.sha256(state).digest() if self.hash_in_client else bytes(state)
        digest = event_digest_from_hash(int(pos), oid, int(version), topic, state_hash)
        link = hashlib.sha256(self.link + digest).digest()
        if link != stored:
            return ChainBreak(
                int(pos), "link mismatch",
                f"the link recomputed at position {pos} differs from the stored link: the event "
                f"stored there (aggregate {oid} version {version}, {topic.rsplit(':', 1)[-1]}) "
                "or the link was changed after it was written")
        self.link = link
        self.position = int(pos)
        self.checked += 1
        if self.want_merkle:
            self.merkle.add(leaf_hash(digest))
        seal = self.seals.get(self.position)
        if seal is not None:
            if self.sealer is not None:
                if not self.sealer.holds(self.position, link, seal):
                    return ChainBreak(
                        self.position, "seal mismatch",
                        f"the seal at position {self.position} does not hold under the "
                        "ledger's key: it was made by something other than the ledger (or "
                        "with another key)")
                self.seals_checked += 1
            self.sealed = self.position
        for d in self.by_position.get(self.position, ()):
            brk = self._check_digest(d)
            if brk is not None:
                return brk
        return None

    def _check_digest(self, d: DigestRow) -> ChainBreak | None:
        self.digests_checked += 1
        if d.link != self.link:
            return ChainBreak(
                d.position, "digest mismatch",
                f"the chain at position {d.position} no longer matches the digest recorded at "
                f"{d.recorded_at} (the chain was rewritten after that digest)")
        if self.want_merkle and d.merkle_root is not None and d.merkle_root != self.merkle.root():
            return ChainBreak(
                d.position, "digest mismatch",
                f"the Merkle root at position {d.position} differs from the digest recorded at "
                f"{d.recorded_at}")
        return None
