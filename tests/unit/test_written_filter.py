"""``known.Written``: the filter that lets a decisions file's lookups be read ahead."""

from __future__ import annotations

import os
import uuid

from ledger import domain
from ledger.ingest.known import Written


def ids(names: range) -> bytes:
    return b"".join(uuid.uuid5(domain.NAMESPACE, f"encounter:SOS-75\x1fE-{i}").bytes
                    for i in names)


def test_an_added_id_is_never_missed_and_others_are_rarely_named() -> None:
    written = Written()
    assert not written.may_hold(ids(range(1000))).any()
    added = ids(range(0, 200_000, 2))
    written.add(added)
    written.add(os.urandom(16 * 1000))  # any 16 bytes at all
    assert written.may_hold(added).all()
    others = written.may_hold(ids(range(1, 200_000, 2)))
    assert 0 <= others.sum() < 100  # about one in a million at 100 k ids


def test_an_empty_block_is_neither_added_nor_named() -> None:
    written = Written()
    written.add(b"")
    assert written.may_hold(b"").shape == (0,)
