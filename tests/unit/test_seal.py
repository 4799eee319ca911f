"""``ledger.seal``: a seal holds only for its key, its position and its link."""

from __future__ import annotations

import pytest

from ledger.seal import Sealer
from ledger.store import EventWriter, NewEvent


def test_a_seal_holds_for_its_key_position_and_link_only() -> None:
    sealer, link = Sealer(b"the ledger's key"), bytes(range(32))
    seal = sealer.seal(7, link)
    assert sealer.holds(7, link, seal)
    assert not sealer.holds(8, link, seal)
    assert not sealer.holds(7, link[:-1] + b"\x00", seal)
    assert not Sealer(b"another key").holds(7, link, seal)
    # Derived from the key, not the key's own HMAC of the same bytes.
    assert Sealer(b"k").seal(1, link) != Sealer(b"k2").seal(1, link)
    with pytest.raises(ValueError):
        Sealer(b"")


def test_a_writer_without_a_sealer_cannot_write() -> None:
    writer = EventWriter(None)  # type: ignore[arg-type]
    writer._locked = True
    with pytest.raises(RuntimeError, match="without a sealer"):
        writer.append([NewEvent(bytes(16), 1, "t", b"{}")])
