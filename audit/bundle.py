"""The audit bundle's layout and the helpers shared by its writer and its offline verifier.

The layout is a CONTRACT (``audit/docs.md``): names and keys only change additively.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ledger.seal import signature_holds
from ledger.vocabulary import CENT

FORMAT = "claims-ledger-audit-bundle"
FORMAT_VERSION = 2
PROOF_SCHEME = "claims-ledger/merkle-rfc9162-sha256/v1"

MANIFEST = "manifest.json"
SEAL = "manifest.json.sha256"
SIGNATURE = "manifest.json.sig"
ENCOUNTERS = "encounters.jsonl"
RULE_EVENTS = "rule_set_events.jsonl"
EXPLANATIONS = "explanations.json"
TOTALS = "totals.json"
PROOFS = "proofs.json"
REPORT = "report.pdf"
README = "README.txt"
RULES_DIR = "rules"

def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def money(value: Decimal | str | int) -> str:
    """Money as a string with two decimals (exact)."""
    return str(Decimal(value).quantize(CENT))


def to_jsonable(value: Any) -> Any:
    """Plain JSON values from Decimals, dates, pydantic models, dataclasses, tuples."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump(mode="json"))
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if hasattr(value, "_asdict"):
        return to_jsonable(value._asdict())
    return str(value)


def json_bytes(data: Any) -> bytes:
    """The bundle's JSON encoding: UTF-8, sorted keys, indented, newline-terminated."""
    return (json.dumps(to_jsonable(data), ensure_ascii=False, sort_keys=True, indent=2)
            + "\n").encode("utf-8")


def jsonl_line(data: Any) -> bytes:
    return (json.dumps(to_jsonable(data), ensure_ascii=False, sort_keys=True,
                       separators=(",", ":")) + "\n").encode("utf-8")


def seal_text(manifest_bytes: bytes) -> str:
    """The seal file's content, in ``sha256sum`` format."""
    return f"{sha256_hex(manifest_bytes)}  {MANIFEST}\n"


def signature_text(signature: bytes) -> str:
    """The signature file's content: the manifest's Ed25519 signature, hex."""
    return signature.hex() + "\n"


def signed_by(public_key_hex: str, manifest_bytes: bytes, signature_text: str) -> bool:
    """Whether the signature file holds the signature of the manifest under that public key."""
    try:
        key, signature = bytes.fromhex(public_key_hex), bytes.fromhex(signature_text.strip())
    except ValueError:
        return False
    return signature_holds(key, signature, manifest_bytes)


def rule_file(name: str) -> str:
    return f"{RULES_DIR}/{name}.json"


def latest_paid(events: Sequence[dict[str, Any]]) -> Decimal | None:
    """The paid amount of the latest ``Encounter.Decided`` among an encounter's events (as in
    ``encounters.jsonl``)."""
    decided = [e for e in events if e["topic"].endswith("Encounter.Decided")]
    if not decided:
        return None
    latest = max(decided, key=lambda e: e["version"])
    return Decimal(str(latest["state"]["decision"]["paid_amount"]))

