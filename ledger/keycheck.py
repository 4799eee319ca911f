"""One pseudonymisation key per ledger, checked before a batch writes anything.

Pseudonyms are HMACs under the key: under a second key every known patient gets another
pseudonym, so every known row would be recorded as a correction, for ever (the log is
append-only). The ledger keeps a fingerprint of the key it was first used with (HMAC-SHA256 of a
constant under the key, never the key) in ``claims_settings`` and refuses any other key.
"""

from __future__ import annotations

import hmac
from typing import Any

from ledger.errors import KeyMismatchError

#: What the fingerprint is the HMAC of (versioned, should the fingerprint ever change).
FINGERPRINT_MESSAGE = b"claims-ledger key fingerprint v1"
_READ = "SELECT key_fingerprint, recorded_at FROM claims_settings"
_RECORD = "INSERT INTO claims_settings (key_fingerprint) VALUES (%s) ON CONFLICT DO NOTHING"


def fingerprint(key: bytes) -> bytes:
    """The key's fingerprint: 32 bytes that identify it without revealing it."""
    return hmac.digest(key, FINGERPRINT_MESSAGE, "sha256")


def check_key(conn: Any, key: bytes, *, record: bool = True) -> None:
    """Raise ``KeyMismatchError`` unless ``key`` is the ledger's key.

    A ledger with no key recorded yet takes ``key`` when ``record`` (kept only if the caller's
    transaction commits; of two first batches at once, the first to commit wins and the other is
    refused). A ledger holding events from before fingerprints were recorded takes the first key
    checked: they cannot tell which key made them.

    Args:
        conn: a psycopg connection to the ledger's database (``claims_settings`` exists).
        key: the pseudonymisation key.
        record: record the key's fingerprint if the ledger has none.
    """
    given = fingerprint(key)
    row = conn.execute(_READ).fetchone()
    if row is None and record:
        conn.execute(_RECORD, (given,))
        row = conn.execute(_READ).fetchone()
    if row is None or hmac.compare_digest(bytes(row[0]), given):
        return
    raise KeyMismatchError(
        f"CLAIMS_PSEUDONYM_KEY is not the key this ledger was first used with on "
        f"{row[1]:%Y-%m-%d} (key fingerprints {bytes(row[0]).hex()[:12]}… recorded, "
        f"{given.hex()[:12]}… given): under another key every known patient gets a new "
        f"pseudonym, so every known row would be recorded as a correction, permanently (the log "
        f"is append-only). Set CLAIMS_PSEUDONYM_KEY to the ledger's key; nothing was written")
