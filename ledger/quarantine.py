"""The text of quarantined rows: sealed outside the event log, recoverable by the key holder,
erasable for good.

A bad row may hold a patient identifier in any cell (a shifted row puts it anywhere), so its
text never reaches the append-only log, an output or a message. Each import batch has its own
random key (``claims_batch_keys``); each quarantined row's text is encrypted under it with
AES-GCM (``claims_quarantine``, the batch and line bound as associated data), and the batch's
``ImportBatch.Completed`` event keeps only a keyed digest of the text (HMAC-SHA256 under the
batch's key). Whoever may read those two tables reads the text back (``show``); deleting the
batch's key (``shred``) makes it unreadable for ever, and its digest proves nothing about it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Any, NamedTuple
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.utils import get_topic

from ledger.application import EVENTS_TABLE
from ledger.domain import ImportBatch, batch_id
from ledger.errors import LedgerError

_NONCE = 12
#: Where keys and nonces come from (a test may make them repeatable).
random_bytes = os.urandom


class QuarantineError(LedgerError):
    """A batch's quarantined text cannot be read (no such batch, or its key was shredded)."""


class Sealed(NamedTuple):
    """A quarantined row's text as the key holder reads it back."""

    line: int
    text: str
    digest_ok: bool  # the text's keyed digest matches the one the event log holds


def _aad(batch: UUID, line: int) -> bytes:
    return batch.bytes + struct.pack(">q", line)


def digest(key: bytes, text: str) -> str:
    """The keyed digest of a row's text that the event log keeps (hex)."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


class Sealer:
    """Seals one batch's quarantined rows, in the caller's transaction (the batch's).

    The batch's key is created on first use, or read back when the batch was run before (a
    batch re-run for its pending unknown encounters seals under the same key).
    """

    def __init__(self, conn: Any, batch: UUID):
        self.conn, self.batch = conn, batch
        conn.execute("INSERT INTO claims_batch_keys (batch_id, key) VALUES (%s, %s) "
                     "ON CONFLICT (batch_id) DO NOTHING", (batch, random_bytes(32)))
        row = conn.execute("SELECT key FROM claims_batch_keys WHERE batch_id = %s",
                           (batch,)).fetchone()
        self.key = bytes(row[0])
        self.aead = AESGCM(self.key)

    def seal(self, rows: dict[int, str]) -> dict[int, str]:
        """Seal each line's text; return each line's digest for the event log."""
        sealed = []
        for line, text in rows.items():
            nonce = random_bytes(_NONCE)
            box = self.aead.encrypt(nonce, text.encode("utf-8"), _aad(self.batch, line))
            sealed.append((self.batch, line, nonce + box))
        with self.conn.cursor() as cur:
            cur.executemany("INSERT INTO claims_quarantine (batch_id, line, sealed) "
                            "VALUES (%s, %s, %s) ON CONFLICT (batch_id, line) DO NOTHING",
                            sealed)
        return {line: digest(self.key, text) for line, text in rows.items()}


def show(conn: Any, batch: UUID, digests: dict[int, str | None]) -> list[Sealed]:
    """The quarantined rows' text of a batch, in line order, each checked against the digest the
    event log holds for its line (``digests``). Raises ``QuarantineError`` if the batch has no
    key (never sealed anything, or shredded)."""
    row = conn.execute("SELECT key FROM claims_batch_keys WHERE batch_id = %s",
                       (batch,)).fetchone()
    if row is None:
        raise QuarantineError(f"batch {batch} has no key: nothing sealed, or its key was "
                              "shredded (its quarantined text is gone for good)")
    key = bytes(row[0])
    aead = AESGCM(key)
    out = []
    for line, sealed in conn.execute("SELECT line, sealed FROM claims_quarantine "
                                     "WHERE batch_id = %s ORDER BY line", (batch,)):
        blob = bytes(sealed)
        try:
            text = aead.decrypt(blob[:_NONCE], blob[_NONCE:], _aad(batch, line)).decode("utf-8")
        except InvalidTag:
            raise QuarantineError(f"batch {batch}, line {line}: the sealed text was altered "
                                  "(it does not decrypt under the batch's key)") from None
        out.append(Sealed(line, text, digests.get(line) == digest(key, text)))
    return out


def shred(conn: Any, batch: UUID) -> bool:
    """Erase a batch's quarantined text for good: its key and its sealed rows. Returns whether
    there was a key. Needs the owner's rights (the application may not delete)."""
    with conn.transaction():
        gone = conn.execute("DELETE FROM claims_batch_keys WHERE batch_id = %s",
                            (batch,)).rowcount
        conn.execute("DELETE FROM claims_quarantine WHERE batch_id = %s", (batch,))
    return bool(gone)


def batches_of(conn: Any, file_sha256: str) -> list[UUID]:
    """The import batches of a file (by its SHA-256: one a kind) that sealed anything."""
    candidates = [batch_id(file_sha256, kind) for kind in ("encounters", "decisions")]
    rows = conn.execute("SELECT batch_id FROM claims_batch_keys WHERE batch_id = ANY(%s)",
                        (candidates,)).fetchall()
    return [row[0] for row in rows]


def logged_digests(conn: Any, batch: UUID) -> dict[int, str | None]:
    """Each quarantined line's digest as the batch's latest ``Completed`` event holds it."""
    row = conn.execute(
        f"SELECT convert_from(state, 'UTF8')::jsonb->'quarantined' FROM {EVENTS_TABLE} "
        "WHERE originator_id = %s AND topic = %s ORDER BY originator_version DESC LIMIT 1",
        (batch, get_topic(ImportBatch.Completed))).fetchone()
    return {q["line"]: q.get("raw_digest") for q in (row[0] if row else [])}
