"""Offline pieces of the audit trail that need no database."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

from audit import bundle as b
from audit.bundle_verify import verify_bundle
from ledger.chain import event_digest, event_digest_from_hash, next_link


def test_digest_from_state_hash_is_the_chain_digest() -> None:
    oid, state = uuid4(), b'{"facts": {"association": "SOS-75"}}'
    expected = event_digest(7, oid, 3, "ledger.domain:Encounter.Decided", state)
    got = event_digest_from_hash(7, oid, 3, "ledger.domain:Encounter.Decided",
                                 hashlib.sha256(state).digest())
    assert got == expected
    previous = bytes(range(32))
    assert hashlib.sha256(previous + got).digest() == next_link(
        previous, 7, oid, 3, "ledger.domain:Encounter.Decided", state)


def test_not_a_bundle(tmp_path: Path) -> None:
    assert verify_bundle(tmp_path / "nothing")[0].message == "no such file or folder"
    (tmp_path / "x").mkdir()
    problems = verify_bundle(tmp_path / "x")
    assert [p.file for p in problems] == [b.MANIFEST]
    (tmp_path / "y.zip").write_bytes(b"PK not really")
    assert "not a folder nor a zip" in verify_bundle(tmp_path / "y.zip")[0].message


def test_json_encoding_is_stable_and_exact() -> None:
    data = {"b": Decimal("1.10"), "a": ("x", 1)}
    assert b.json_bytes(data) == b'{\n  "a": [\n    "x",\n    1\n  ],\n  "b": "1.10"\n}\n'
    assert b.money("3") == "3.00" and b.money(Decimal("2.005")) == "2.00"
    assert b.seal_text(b"{}").endswith("  manifest.json\n")
