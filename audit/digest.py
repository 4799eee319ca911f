"""Chain digests: the chain head recorded from time to time, to be handed out and kept elsewhere.

A hash chain alone cannot tell a rewritten log from the original if the whole chain was recomputed,
nor notice events cut off its end. A digest (position, link, time) that left the ledger — sent to
the federation, printed in a report, given to the other side of a dispute — pins the log as it was:
``verify_chain`` checks every recorded digest against the recomputed chain. An audit extract
records one too, with the Merkle root of its proofs, so the table is also the log of extracts.

A digest is signed with the ledger's Ed25519 key (``ledger.seal.Sealer``) when it is recorded
with the ledger's key, and carries the public key: whoever receives it can check that the ledger
made it (``signed_message``), and compare the key with the one the ledger publishes.

``claims_chain_digests`` is part of the ledger's schema (``ops/sql/schema.sql``, applied by
``ledger.store.init_schema``) and append-only like the event log (same trigger function).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.seal import Sealer, signature_holds


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
        signature: the Ed25519 signature of ``signed_message``, hex (None if unsigned).
        public_key: the ledger's public key it was signed with, hex.
    """

    position: int
    link: str
    recorded_at: datetime
    actor: str = "unknown"
    merkle_root: str | None = None
    note: str | None = None
    signature: str | None = None
    public_key: str | None = None


def signed_message(position: int, link: bytes, merkle_root: bytes | None) -> bytes:
    """What a digest's signature signs: its position, link and Merkle root (if any)."""
    root = merkle_root.hex() if merkle_root else "-"
    return f"claims-ledger digest v1\n{position}\n{link.hex()}\n{root}\n".encode("ascii")


def signed_by(digest: Digest, public_key: bytes) -> bool:
    """Whether ``digest`` carries a signature under ``public_key`` of its own content."""
    if not digest.signature or digest.public_key != public_key.hex():
        return False
    try:
        signature, link = bytes.fromhex(digest.signature), bytes.fromhex(digest.link)
        root = bytes.fromhex(digest.merkle_root) if digest.merkle_root else None
    except ValueError:
        return False
    return signature_holds(public_key, signature,
                           signed_message(digest.position, link, root))


def insert_digest(
    conn: Any, position: int, link: bytes, *, actor: str,
    merkle_root: bytes | None = None, note: str | None = None, sealer: Sealer | None = None,
) -> Digest:
    """Store a digest as given (the caller computed it in its own snapshot), signed with the
    ledger's key when ``sealer`` is given."""
    signature = (sealer.sign(signed_message(position, link, merkle_root))
                 if sealer is not None else None)
    public_key = sealer.public_key() if sealer is not None else None
    row = conn.execute(
        "INSERT INTO claims_chain_digests (position, link, merkle_root, actor, note, signature, "
        "public_key) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING recorded_at",
        (position, link, merkle_root, actor, note, signature, public_key),
    ).fetchone()
    return Digest(position, link.hex(), row[0], actor, merkle_root.hex() if merkle_root else None,
                  note, signature.hex() if signature else None,
                  public_key.hex() if public_key else None)


def record_digest(conn: Any, *, actor: str = "unknown", note: str | None = None,
                  sealer: Sealer | None = None) -> Digest:
    """Record the current chain head (cheap: reads the last link, hashes nothing).

    Args:
        conn: an open psycopg connection to the ledger database.
        actor: who records it.
        note: free text kept with it.
        sealer: signs it with the ledger's key.

    Returns:
        The ``Digest`` stored. Position 0 and 32 zero bytes for an empty ledger.
    """
    row = conn.execute(
        "SELECT notification_id, link FROM claims_chain ORDER BY notification_id DESC LIMIT 1"
    ).fetchone()
    position, link = (int(row[0]), bytes(row[1])) if row else (0, bytes(32))
    return insert_digest(conn, position, link, actor=actor, note=note, sealer=sealer)


def list_digests(conn: Any) -> list[Digest]:
    """Every recorded digest, oldest first (empty if none was ever recorded)."""
    if conn.execute("SELECT to_regclass('claims_chain_digests')").fetchone()[0] is None:
        return []
    rows = conn.execute(
        "SELECT position, link, recorded_at, actor, merkle_root, note, signature, public_key "
        "FROM claims_chain_digests ORDER BY id"
    ).fetchall()
    return [
        Digest(int(p), bytes(li).hex(), t, a, bytes(r).hex() if r else None, n,
               bytes(s).hex() if s else None, bytes(k).hex() if k else None)
        for p, li, t, a, r, n, s, k in rows
    ]
