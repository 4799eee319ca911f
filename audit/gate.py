"""Results only from a verified log: the chain checked since the last verified position.

``compare``, ``replay`` and ``reconcile`` compute payouts from the projection, which is rebuilt
from the log: an event changed in the database would change their figures silently. Before they
run, ``check`` recomputes the chain from the head of the last full verification
(``claims_chain_verified``, recorded by ``claims verify``) to the current head, with its seals
(``ledger.seal``): it costs what was written since that verification. The division of labour:
an event changed after the last full verification stops every result; one changed before it is
found by the next full verification, which records its failure, so the checks start from the
first event again.

A verified position is sealed under the ledger's key when it was given, and such a seal is
checked before the position is trusted; one whose link is no longer the chain's at that position
is not trusted either (the chain was rewritten since): the check then starts from the first
event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from audit.verify import ChainReport, scan_log, snapshot
from ledger.chain import GENESIS
from ledger.seal import Sealer

#: What a verified position's seal is the MAC of, besides its position and link (so that a
#: write's seal cannot stand for a verification's, nor the other way round).
_VERIFIED = b"verified:"


@dataclass(frozen=True)
class Gate:
    """What ``check`` found.

    Attributes:
        report: the chain check from ``since`` to the head.
        since: the verified position the check started from (0: the first event).
    """

    report: ChainReport
    since: int

    @property
    def ok(self) -> bool:
        return self.report.whole

    def problem(self) -> str:
        """Why the log cannot be trusted, in a sentence ("" when it can)."""
        r = self.report
        if r.first_break is not None:
            return (f"the chain is broken at position {r.first_break.position} "
                    f"({r.first_break.kind}): {r.first_break.message}")
        if r.unchained:
            return (f"{r.unchained} event(s) after position {r.head_position} have no chain "
                    "link: written by something other than the ledger")
        if r.unsealed:
            return (f"{r.unsealed} event(s) up to position {r.head_position} are not sealed "
                    "with the ledger's key: written by something other than the ledger")
        return ""


def _seal(sealer: Sealer, position: int, link: bytes) -> bytes:
    return sealer.seal(position, _VERIFIED + link)


def last_verified(conn: Any, sealer: Sealer | None) -> tuple[int, bytes]:
    """The last verified position still to be trusted, and its link ((0, genesis) if none)."""
    if conn.execute("SELECT to_regclass('claims_chain_verified')").fetchone()[0] is None:
        return 0, GENESIS
    row = conn.execute(
        "SELECT v.notification_id, v.ok, v.link, v.seal, c.link FROM claims_chain_verified v "
        "LEFT JOIN claims_chain c USING (notification_id) ORDER BY v.id DESC LIMIT 1").fetchone()
    if row is None or not row[1] or row[2] is None:
        return 0, GENESIS  # never verified, or the last verification failed
    position, link, seal, chained = int(row[0]), bytes(row[2]), row[3], row[4]
    if chained is None or bytes(chained) != link:
        return 0, GENESIS  # the chain was rewritten since
    if sealer is not None and (seal is None or not sealer.holds(position, _VERIFIED + link,
                                                                bytes(seal))):
        return 0, GENESIS
    return position, link


def record_verified(conn: Any, report: ChainReport, sealer: Sealer | None) -> bool:
    """Record a full verification: its head when OK, its failure otherwise (the checks then
    start from the first event). False when this role may not (a reader)."""
    ok = report.whole
    link = bytes.fromhex(report.head_link) if ok else None
    seal = (_seal(sealer, report.head_position, link)
            if sealer is not None and link is not None else None)
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO claims_chain_verified (notification_id, ok, link, seal) "
                "VALUES (%s, %s, %s, %s)", (report.head_position, ok, link, seal))
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def check(conn: Any, sealer: Sealer | None) -> Gate:
    """Check the chain from the last verified position to the head (records nothing).

    Args:
        conn: an autocommit psycopg connection to the ledger database, not in a transaction.
        sealer: checks the seals (and verified positions) under the ledger's key, if given.
    """
    with snapshot(conn):
        since = last_verified(conn, sealer)
        report = scan_log(conn, sealer=sealer, since=since).report
    return Gate(report, since[0])
