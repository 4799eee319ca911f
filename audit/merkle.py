"""A Merkle tree over the event log (RFC 9162 shape), built in one streaming pass.

The hash chain (``ledger.chain``) proves that nothing changed, but proving that one event
belongs to it would need every later event. The Merkle tree over the same events gives short
inclusion proofs that reveal only hashes of other events:

- leaf ``i`` (position ``i + 1``) = SHA-256(``0x00`` ‖ ``event_digest`` of the stored event);
- node = SHA-256(``0x01`` ‖ left ‖ right); a tree of ``n`` leaves splits at the largest power of
  two below ``n`` (RFC 9162 §2.1.1), so any verifier of Certificate-Transparency proofs applies.

``MerkleBuilder`` adds leaves in order and keeps only O(log n) subtree roots plus the audit paths of
the leaves it was asked to prove, so the whole log never sits in memory.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Sequence


def leaf_hash(event_digest: bytes) -> bytes:
    """The Merkle leaf of a stored event, from its ``chain.event_digest`` bytes."""
    return hashlib.sha256(b"\x00" + event_digest).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An inner Merkle node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleBuilder:
    """Streams leaves in order; yields the root at any size and audit paths for chosen leaves.

    Args:
        targets: 0-based leaf indexes whose inclusion paths are wanted.
    """

    def __init__(self, targets: Iterable[int] = ()) -> None:
        self.size = 0
        # Perfect subtrees as (start index, leaf count, hash), sizes strictly decreasing.
        self._stack: list[tuple[int, int, bytes]] = []
        self._targets = sorted(set(targets))
        self._paths: dict[int, list[bytes]] = {t: [] for t in self._targets}

    def _append(self, start: int, end: int, sibling: bytes) -> None:
        lo = bisect.bisect_left(self._targets, start)
        hi = bisect.bisect_left(self._targets, end)
        for t in self._targets[lo:hi]:
            self._paths[t].append(sibling)

    def add(self, leaf: bytes) -> None:
        """Append the next leaf (a ``leaf_hash``)."""
        start, count, digest = self.size, 1, leaf
        self.size += 1
        while self._stack and self._stack[-1][1] == count:
            left_start, _, left = self._stack.pop()
            if self._targets:
                self._append(left_start, start, digest)
                self._append(start, start + count, left)
            start, count, digest = left_start, count * 2, node_hash(left, digest)
        self._stack.append((start, count, digest))

    def _fold(self, record: bool) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        start, count, acc = self._stack[-1]
        end = start + count
        for left_start, _, left in reversed(self._stack[:-1]):
            if record and self._targets:
                self._append(start, end, left)
                self._append(left_start, start, acc)
            acc = node_hash(left, acc)
            start = left_start
        return acc

    def root(self) -> bytes:
        """The root of the tree of the leaves added so far (may be called at any size)."""
        return self._fold(record=False)

    def finish(self) -> tuple[bytes, dict[int, list[bytes]]]:
        """The root and the audit paths (bottom-up) of the targets; call once, at the end."""
        missing = [t for t in self._targets if t >= self.size]
        if missing:
            raise ValueError(f"leaf indexes beyond the tree size {self.size}: {missing[:5]}")
        return self._fold(record=True), self._paths


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The root of a list of leaves (reference implementation of RFC 9162 §2.1.1)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof (RFC 9162 §2.1.3.2).

    Args:
        leaf: the leaf hash.
        index: its 0-based index (position − 1).
        size: the tree size (the ledger position the root was computed at).
        path: the audit path, bottom-up.
        root: the expected root.

    Returns:
        True if the path leads from the leaf to the root.
    """
    if index < 0 or index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
