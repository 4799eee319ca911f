"""The streaming Merkle builder agrees with the reference tree, and its proofs verify."""

from __future__ import annotations

import hashlib

import pytest

from audit.merkle import MerkleBuilder, leaf_hash, root_of, verify_inclusion


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]


@pytest.mark.parametrize("n", [*range(1, 34), 64, 100])
def test_streamed_root_and_every_path_verify(n: int) -> None:
    leaves = _leaves(n)
    builder = MerkleBuilder(targets=range(n))
    for i, leaf in enumerate(leaves):
        builder.add(leaf)
        assert builder.root() == root_of(leaves[: i + 1])
    root, paths = builder.finish()
    assert root == root_of(leaves)
    for i in range(n):
        assert verify_inclusion(leaves[i], i, n, paths[i], root)


def test_tampered_proofs_fail() -> None:
    leaves = _leaves(13)
    builder = MerkleBuilder(targets=[4])
    for leaf in leaves:
        builder.add(leaf)
    root, paths = builder.finish()
    path = paths[4]
    assert verify_inclusion(leaves[4], 4, 13, path, root)
    assert not verify_inclusion(leaves[5], 4, 13, path, root)  # another leaf
    assert not verify_inclusion(leaves[4], 5, 13, path, root)  # another index
    assert not verify_inclusion(leaves[4], 4, 8, path, root)  # another size
    assert not verify_inclusion(leaves[4], 4, 13, path[:-1], root)  # short path
    bad = [hashlib.sha256(path[0]).digest(), *path[1:]]
    assert not verify_inclusion(leaves[4], 4, 13, bad, root)


def test_target_beyond_size_is_an_error() -> None:
    builder = MerkleBuilder(targets=[3])
    builder.add(_leaves(1)[0])
    with pytest.raises(ValueError):
        builder.finish()
