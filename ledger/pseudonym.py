"""Pseudonymisation of patient identifiers with a keyed hash (HMAC-SHA256).

The same key and identifier always give the same pseudonym, so a patient's encounters can be linked
without the identifier ever reaching an event, a table, a log or an extract.
"""

from __future__ import annotations

import hmac


class Pseudonymiser:
    """Turns a patient identifier into a stable, non-reversible pseudonym."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("the pseudonymisation key must be at least 16 bytes")
        self.key = key

    def __call__(self, identifier: str) -> str:
        digest = hmac.digest(self.key, identifier.strip().encode("utf-8"), "sha256")
        return "ph_" + digest[:16].hex()
