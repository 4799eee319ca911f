"""Pseudonymisation of patient identifiers with a keyed hash (HMAC-SHA256).

The same key and identifier always give the same pseudonym, so a patient's encounters can be linked
without the identifier ever reaching an event, a table, a log or an extract.
"""

from __future__ import annotations

import hashlib
import hmac

#: A pseudonym: this prefix, then the hex of the HMAC's first ``HEX_DIGITS // 2`` bytes.
PREFIX = "ph_"
HEX_DIGITS = 32
#: The shortest key accepted.
MIN_KEY_BYTES = 16


class Pseudonymiser:
    """Turns a patient identifier into a stable, non-reversible pseudonym."""

    def __init__(self, key: bytes):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the pseudonymisation key must be at least {MIN_KEY_BYTES} bytes")
        self.key = key

    def __call__(self, identifier: str) -> str:
        digest = hmac.digest(self.key, identifier.strip().encode("utf-8"), "sha256")
        return PREFIX + digest[:HEX_DIGITS // 2].hex()


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The key's inner and outer 64-byte pads: HMAC-SHA256(key, m) is
    SHA-256(outer + SHA-256(inner + m)) (RFC 2104), for the ingest's bulk paths."""
    block = (key if len(key) <= 64 else hashlib.sha256(key).digest()).ljust(64, b"\x00")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)
