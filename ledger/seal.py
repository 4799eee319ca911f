"""Seals: the ledger's keyed MAC over the chain head, so that only the ledger extends the log.

The hash chain makes any change to a stored event visible, but anyone who may INSERT can append
an event and the link that chains it. Every write of the ledger therefore ends, in its own
transaction, with a seal of the new chain head: HMAC-SHA256, under a key derived from the
ledger's pseudonymisation key (which never enters the database), of the head's position and
link. The link covers every event before it (position, aggregate id, version, topic and state),
so one seal authenticates the whole log up to its position: an event appended by another path
(new, or a copy of a real one under another aggregate id) lies past the last seal, and a seal
cannot be made without the key. ``EventWriter.lock`` refuses to write past an unsealed event,
and ``audit.verify`` checks every seal.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.errors import UnsealedEventsError

#: What the seal key and the signing key are derived for: the pseudonymisation key is never
#: used as it is.
_PURPOSE = b"claims-ledger seal key v1"
_SIGNING = b"claims-ledger signing key v1"
_POSITION = struct.Struct(">Q")


class Sealer:
    """Makes and checks seals under the ledger's key (its pseudonymisation key), and signs what
    leaves the ledger (audit bundles) with an Ed25519 key derived from it, whose public half
    anyone may check a signature with."""

    def __init__(self, ledger_key: bytes):
        if not ledger_key:
            raise ValueError("a seal needs the ledger's key")
        self._key = hmac.digest(ledger_key, _PURPOSE, hashlib.sha256)
        self._signing = Ed25519PrivateKey.from_private_bytes(
            hmac.digest(ledger_key, _SIGNING, hashlib.sha256))

    def public_key(self) -> bytes:
        """The ledger's public key (Ed25519, 32 bytes): what its signatures are checked with."""
        return self._signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature of ``data`` under the ledger's signing key."""
        return self._signing.sign(data)

    def seal(self, position: int, link: bytes) -> bytes:
        """The seal of the chain head at ``position`` whose link is ``link``."""
        return hmac.digest(self._key, _POSITION.pack(position) + link, hashlib.sha256)

    def holds(self, position: int, link: bytes, seal: bytes) -> bool:
        """Whether ``seal`` is this key's seal of that chain head (in constant time)."""
        return hmac.compare_digest(self.seal(position, link), seal)


def signature_holds(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is the Ed25519 signature of ``data`` under ``public_key`` (what
    ``Sealer.sign`` makes; checked with the public key alone)."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (ValueError, InvalidSignature):
        return False
    return True


def check_last_seal(conn: Any, head: int, link: bytes, sealer: Sealer | None, *,
                    adopting: bool = False) -> None:
    """Raise ``UnsealedEventsError`` unless the log's last seal holds (under ``sealer``'s key,
    when given) and, unless ``adopting``, seals the chain head (position ``head``, ``link``)."""
    row = conn.execute("SELECT notification_id, seal FROM claims_chain_seals "
                       "ORDER BY notification_id DESC LIMIT 1").fetchone()
    if row is None:
        if head and not adopting:
            raise UnsealedEventsError(1, head)
        return
    sealed, seal = int(row[0]), bytes(row[1])
    if sealed > head:
        raise UnsealedEventsError(sealed, sealed, forged=True)
    if sealer is not None:
        if sealed != head:
            found = conn.execute("SELECT link FROM claims_chain WHERE notification_id = %s",
                                 (sealed,)).fetchone()
            link = bytes(found[0]) if found else b""
        if not sealer.holds(sealed, link, seal):
            raise UnsealedEventsError(sealed, sealed, forged=True)
    if sealed != head and not adopting:
        raise UnsealedEventsError(sealed + 1, head)
