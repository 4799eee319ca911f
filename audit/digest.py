"""Chain digests: the chain head recorded from time to time, to be handed out and kept elsewhere.

A hash chain alone cannot tell a rewritten log from the original if the whole chain was recomputed,
nor notice events cut off its end. A digest (position, link, time) that left the ledger — sent to
the federation, printed in a report, given to the other side of a dispute — pins the log as it was:
``verify_chain`` checks every recorded digest against the recomputed chain. An audit extract
records one too, with the Merkle root of its proofs, so the table is also the log of extracts.

``claims_chain_digests`` is part of the ledger's schema (``ops/sql/schema.sql``, applied by
``ledger.store.init_schema``) and append-only like the event log (same trigger function).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Digest:
    """One recorded chain head.

    Attributes:
        position: the ledger position (notification id) of the chain head.
        link: the chain link at that position, hex.
        recorded_at: when it was recorded.
        actor: who recorded it.
        merkle_root: the Merkle root over positions 1..position, hex, when computed.
        note: why (e.g. which audit extract).
    """

    position: int
    link: str
    recorded_at: datetime
    actor: str = "unknown"
    merkle_root: str | None = None
    note: str | None = None


def insert_digest(
    conn: Any, position: int, link: bytes, *, actor: str,
    merkle_root: bytes | None = None, note: str | None = None,
) -> Digest:
    """Store a digest as given (the caller computed it in its own snapshot)."""
    row = conn.execute(
        "INSERT INTO claims_chain_digests (position, link, merkle_root, actor, note) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING recorded_at",
        (position, link, merkle_root, actor, note),
    ).fetchone()
    return Digest(position, link.hex(), row[0], actor, merkle_root.hex() if merkle_root else None,
                  note)


def record_digest(conn: Any, *, actor: str = "unknown", note: str | None = None) -> Digest:
    """Record the current chain head (cheap: reads the last link, hashes nothing).

    Args:
        conn: an open psycopg connection to the ledger database.
        actor: who records it.
        note: free text kept with it.

    Returns:
        The ``Digest`` stored. Position 0 and 32 zero bytes for an empty ledger.
    """
    row = conn.execute(
        "SELECT notification_id, link FROM claims_chain ORDER BY notification_id DESC LIMIT 1"
    ).fetchone()
    position, link = (int(row[0]), bytes(row[1])) if row else (0, bytes(32))
    return insert_digest(conn, position, link, actor=actor, note=note)


def list_digests(conn: Any) -> list[Digest]:
    """Every recorded digest, oldest first (empty if none was ever recorded)."""
    if conn.execute("SELECT to_regclass('claims_chain_digests')").fetchone()[0] is None:
        return []
    rows = conn.execute(
        "SELECT position, link, recorded_at, actor, merkle_root, note FROM claims_chain_digests "
        "ORDER BY id"
    ).fetchall()
    return [
        Digest(int(p), bytes(li).hex(), t, a, bytes(r).hex() if r else None, n)
        for p, li, t, a, r, n in rows
    ]
