"""The tamper-evident hash chain over the notification log: its link formula.

The write side extends the chain as it writes (``ledger.store``); the audit trail (``audit``)
recomputes it to verify the log and to prove events in extracts, with these same functions.

Link ``n`` = SHA-256 of: link ``n-1`` (32 zero bytes before the first), then the stored event at
position ``n``: its position (8 bytes, big-endian), aggregate id (16 bytes), version (8 bytes),
topic (4-byte length + UTF-8), and the SHA-256 of its state. Changing any stored byte of any event,
or removing or reordering events, changes every later link.
"""

from __future__ import annotations

import hashlib
import struct
from uuid import UUID

GENESIS = bytes(32)


def event_digest(
    position: int, originator_id: UUID, version: int, topic: str, state: bytes
) -> bytes:
    """The part of a link that depends on the stored event alone."""
    return event_digest_from_hash(position, originator_id, version, topic,
                                  hashlib.sha256(state).digest())


def event_digest_from_hash(
    position: int, originator_id: UUID, version: int, topic: str, state_sha256: bytes
) -> bytes:
    """``event_digest`` given the SHA-256 of the state instead of the state."""
    return digest_parts(position, originator_id.bytes, version, topic_field(topic), state_sha256)


def topic_field(topic: str) -> bytes:
    """A topic as it enters the digest: 4-byte length, then UTF-8."""
    topic_bytes = topic.encode("utf-8")
    return struct.pack(">I", len(topic_bytes)) + topic_bytes


def digest_parts(position: int, originator_id: bytes, version: int, topic: bytes,
                 state_sha256: bytes) -> bytes:
    """``event_digest`` from its parts already as bytes (the bulk writer's form)."""
    return (_QUAD.pack(position) + originator_id + _QUAD.pack(version) + topic + state_sha256)


_QUAD = struct.Struct(">Q")


def next_link(
    previous: bytes, position: int, originator_id: UUID, version: int, topic: str, state: bytes
) -> bytes:
    """The chain link at ``position`` given the previous link and the stored event."""
    return hashlib.sha256(
        previous + event_digest(position, originator_id, version, topic, state)
    ).digest()


def link_of(previous: bytes, head: bytes, topic: bytes, state_sha256: bytes) -> bytes:
    """``next_link`` from its parts as the bulk writer has them: ``head`` is the position, id
    and version (``_QUAD``, 16 bytes, ``_QUAD``), ``topic`` its ``topic_field``."""
    return hashlib.sha256(b"".join((previous, head, topic, state_sha256))).digest()
