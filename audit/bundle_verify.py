"""Verifying an audit bundle offline: no database, only the bundle's own files.

Checks, each failure naming its file: the manifest's seal and its Ed25519 signature (under the
public key the manifest names, and that key is the ledger's when the caller gives it: a forger
can sign with a key of his own, not with the ledger's); every listed file's SHA-256 and no
unlisted file; every event's digest recomputed from its exact stored state, its chain link from the
link before it, and its Merkle audit path up to the root in the manifest; that every event belongs
to the bundle's association and to the encounter it is filed under (its aggregate id, the
encounter's id computed from association and reference), that each encounter's history is whole
(versions 1 to n) and that it is marked voided exactly when its last facts event is a void; that
each rule file is the content its proved ledger event published; that the explanations add up and
the totals equal their sums (exact decimals), and that the insurer's paid total matches the
decisions in the events. Recomputing the explanations from the rules is not done here (it needs
the rule engine, ``claims explain``).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

from audit import bundle as b
from audit.merkle import leaf_hash, verify_inclusion
from ledger.chain import event_digest_from_hash
from ledger.domain import encounter_id


class BundleProblem(NamedTuple):
    """One failed check: the file it is in, what failed, and the ledger position if any."""

    file: str
    message: str
    position: int | None = None

    def render(self) -> str:
        where = f" (position {self.position})" if self.position is not None else ""
        return f"{self.file}: {self.message}{where}"


def _reader(path: Path) -> tuple[list[str], Callable[[str], bytes]]:
    if path.is_dir():
        names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        return names, lambda n: (path / n).read_bytes()
    zf = zipfile.ZipFile(path)
    names = sorted(n for n in zf.namelist() if not n.endswith("/"))
    return names, zf.read


class _Check:
    def __init__(self, names: list[str], read: Callable[[str], bytes]):
        self.names = set(names)
        self.read = read
        self.problems: list[BundleProblem] = []
        self.seen: set[int] = set()  # positions of the events checked

    def fail(self, file: str, message: str, position: int | None = None) -> None:
        self.problems.append(BundleProblem(file, message, position))

    def json(self, name: str) -> Any:
        if name not in self.names:
            self.fail(name, "missing from the bundle")
            return None
        try:
            return json.loads(self.read(name))
        except (ValueError, UnicodeDecodeError) as exc:
            self.fail(name, f"not valid JSON: {exc}")
            return None

    def jsonl(self, name: str) -> list[Any]:
        if name not in self.names:
            self.fail(name, "missing from the bundle")
            return []
        out = []
        for n, line in enumerate(self.read(name).splitlines(), 1):
            try:
                out.append(json.loads(line))
            except (ValueError, UnicodeDecodeError) as exc:
                self.fail(name, f"line {n} is not valid JSON: {exc}")
        return out


def verify_bundle(path: Path, ledger_key: bytes | None = None) -> list[BundleProblem]:
    """Check an audit bundle (folder or zip) offline.

    Args:
        path: the bundle's folder or zip file.
        ledger_key: the ledger's public key (32 bytes), as it publishes it: the bundle must be
            signed with it. Without it, the signature is checked under the key the bundle names.

    Returns:
        The problems found, empty when the bundle verifies.
    """
    if not path.exists():
        return [BundleProblem(str(path), "no such file or folder")]
    try:
        names, read = _reader(path)
    except zipfile.BadZipFile as exc:
        return [BundleProblem(str(path), f"not a folder nor a zip file: {exc}")]
    c = _Check(names, read)
    manifest = _manifest(c, ledger_key)
    if manifest is None:
        return c.problems
    _files(c, manifest)
    proofs = _proofs(c, manifest)
    encounters = c.jsonl(b.ENCOUNTERS)
    for item in encounters:
        if item.get("association") != manifest.get("association"):
            c.fail(b.ENCOUNTERS, f"encounter {item.get('encounter_ref')!r} is of association "
                                 f"{item.get('association')!r}, not the bundle's")
        _history(c, item)
        for ev in item.get("events", []):
            _event(c, b.ENCOUNTERS, ev, proofs, manifest)
            facts = (ev.get("state") or {}).get("facts") or {}
            if facts and facts.get("association") != manifest.get("association"):
                c.fail(b.ENCOUNTERS, "an event's facts are of another association",
                       ev.get("position"))
    _rules(c, manifest, proofs)
    _amounts(c, encounters)
    for pos in sorted(set(proofs) - c.seen):
        c.fail(b.PROOFS, "a proof has no event in the bundle", pos)
    return c.problems


def _manifest(c: _Check, ledger_key: bytes | None) -> dict[str, Any] | None:
    if b.MANIFEST not in c.names:
        c.fail(b.MANIFEST, "missing: this is not an audit bundle")
        return None
    raw = c.read(b.MANIFEST)
    if b.SEAL not in c.names:
        c.fail(b.SEAL, "missing")
    elif c.read(b.SEAL).decode("ascii", "replace") != b.seal_text(raw):
        c.fail(b.MANIFEST, f"its SHA-256 ({b.sha256_hex(raw)}) does not match the seal in "
                           f"{b.SEAL}: manifest.json or its seal was changed")
    manifest = c.json(b.MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != b.FORMAT:
        c.fail(b.MANIFEST, f"not a {b.FORMAT} manifest")
        return None
    if manifest.get("format_version") != b.FORMAT_VERSION:
        c.fail(b.MANIFEST, f"format_version {manifest.get('format_version')} is not supported "
                           f"(this verifier reads {b.FORMAT_VERSION}: signed bundles)")
    key = str((manifest.get("ledger") or {}).get("public_key", ""))
    if b.SIGNATURE not in c.names:
        c.fail(b.SIGNATURE, "missing: the bundle is not signed")
    elif not b.signed_by(key, raw, c.read(b.SIGNATURE).decode("ascii", "replace")):
        c.fail(b.SIGNATURE, f"not a signature of manifest.json under the public key it names "
                            f"({key or 'none'}): manifest.json or its signature was changed")
    if ledger_key is not None and key != ledger_key.hex():
        c.fail(b.MANIFEST, f"signed with the key {key or 'none'}, not the ledger's "
                           f"({ledger_key.hex()}): not made by this ledger")
    return manifest


def _files(c: _Check, manifest: dict[str, Any]) -> None:
    entries = manifest.get("files")
    if not isinstance(entries, list) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) for f in entries):
        c.fail(b.MANIFEST, "its list of files is malformed (each needs a path and a sha256)")
        return
    listed = {f["path"]: f for f in entries}
    for name, entry in sorted(listed.items()):
        if name not in c.names:
            c.fail(name, "listed in manifest.json but missing")
            continue
        actual = b.sha256_hex(c.read(name))
        if actual != entry.get("sha256"):
            c.fail(name, f"SHA-256 {actual} differs from manifest.json's {entry.get('sha256')}: "
                         "the file was changed")
    for name in sorted(c.names - set(listed) - {b.MANIFEST, b.SEAL, b.SIGNATURE}):
        c.fail(name, "not listed in manifest.json")


def _proofs(c: _Check, manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    data = c.json(b.PROOFS)
    if not isinstance(data, dict):
        return {}
    ledger = manifest.get("ledger", {})
    if data.get("scheme") != b.PROOF_SCHEME:
        c.fail(b.PROOFS, f"unknown proof scheme {data.get('scheme')!r}")
    if data.get("root") != ledger.get("merkle_root"):
        c.fail(b.PROOFS, "the Merkle root differs from manifest.json's")
    if data.get("tree_size") != ledger.get("position"):
        c.fail(b.PROOFS, "the tree size differs from manifest.json's ledger position")
    if data.get("chain_head") != {"position": ledger.get("position"),
                                  "link": ledger.get("chain_head_link")}:
        c.fail(b.PROOFS, "the chain head differs from manifest.json's")
    return {int(p["position"]): p for p in data.get("proofs", [])}


def _history(c: _Check, item: dict[str, Any]) -> None:
    """An encounter's events are its own, all of them, and its voided mark is theirs."""
    ref = item.get("encounter_ref")
    try:
        expected = str(encounter_id(str(item["association"]), str(ref)))
    except KeyError as exc:
        c.fail(b.ENCOUNTERS, f"an encounter has no {exc}")
        return
    if item.get("encounter_id") != expected:
        c.fail(b.ENCOUNTERS, f"encounter {ref!r} is filed under id {item.get('encounter_id')}, "
                             f"not the id of its association and reference ({expected})")
    events = item.get("events") or []
    for ev in events:
        if ev.get("aggregate_id") != expected:
            c.fail(b.ENCOUNTERS, f"an event of aggregate {ev.get('aggregate_id')} is filed under "
                                 f"encounter {ref!r}", ev.get("position"))
    versions = [ev.get("version") for ev in events]
    if versions != list(range(1, len(events) + 1)):
        c.fail(b.ENCOUNTERS, f"encounter {ref!r}'s history is not whole: versions {versions}")
    facts = [str(ev.get("topic", "")) for ev in events
             if str(ev.get("topic", "")).rsplit(".", 1)[-1] in _FACTS_TOPICS]
    voided = bool(facts) and facts[-1].endswith(".Voided")
    if bool(item.get("voided")) != voided:
        c.fail(b.ENCOUNTERS, f"encounter {ref!r} is marked {'' if item.get('voided') else 'not '}"
                             f"voided, but its last facts event is "
                             f"{facts[-1].rsplit(':', 1)[-1] if facts else 'missing'}")


#: The events that set an encounter's facts, or void them (the last one says which holds).
_FACTS_TOPICS = ("Recorded", "Corrected", "Voided")


def _event(c: _Check, file: str, ev: dict[str, Any], proofs: dict[int, dict[str, Any]],
           manifest: dict[str, Any]) -> None:
    raw_pos = ev.get("position")
    if not isinstance(raw_pos, int):
        c.fail(file, f"an event has no valid position: {raw_pos!r}")
        return
    pos = raw_pos
    try:
        text = ev["state_json"]
        if json.loads(text) != ev.get("state"):
            c.fail(file, "the readable state differs from the stored state_json", pos)
        if (ev.get("state") or {}).get("provenance") != ev.get("provenance"):
            c.fail(file, "the provenance differs from the stored state's", pos)
        digest = event_digest_from_hash(pos, UUID(ev["aggregate_id"]), int(ev["version"]),
                                        ev["topic"], hashlib.sha256(text.encode()).digest())
    except (KeyError, TypeError, ValueError) as exc:
        c.fail(file, f"malformed event: {exc}", pos)
        return
    c.seen.add(pos)
    proof = proofs.get(pos)
    if proof is None:
        c.fail(b.PROOFS, "no proof for this event", pos)
        return
    leaf = leaf_hash(digest)
    if leaf.hex() != proof.get("leaf"):
        c.fail(file, "the event's digest does not match its proof's leaf: the event was "
                     "changed", pos)
        return
    try:
        before, link = bytes.fromhex(proof["link_before"]), bytes.fromhex(proof["link"])
        path = [bytes.fromhex(h) for h in proof["path"]]
        root = bytes.fromhex(manifest["ledger"]["merkle_root"])
        size = int(manifest["ledger"]["position"])
    except (KeyError, TypeError, ValueError) as exc:
        c.fail(b.PROOFS, f"malformed proof: {exc}", pos)
        return
    if hashlib.sha256(before + digest).digest() != link:
        c.fail(b.PROOFS, "link_before + event digest does not give the event's chain link", pos)
    if pos == size and link.hex() != manifest["ledger"]["chain_head_link"]:
        c.fail(b.PROOFS, "the link of the head event is not the chain head", pos)
    if not verify_inclusion(leaf, pos - 1, size, path, root):
        c.fail(b.PROOFS, "the audit path does not lead to the Merkle root", pos)


def _rules(c: _Check, manifest: dict[str, Any], proofs: dict[int, dict[str, Any]]) -> None:
    events = {item.get("name"): item for item in c.jsonl(b.RULE_EVENTS)}
    for rs in manifest.get("rule_sets", []):
        name, file = rs["name"], rs["file"]
        item = events.get(name)
        if item is None:
            c.fail(b.RULE_EVENTS, f"no ledger event publishes rule set {name!r}")
            continue
        _event(c, b.RULE_EVENTS, item["event"], proofs, manifest)
        state = item["event"].get("state") or {}
        if state.get("content_sha256") != rs["content_hash"]:
            c.fail(b.RULE_EVENTS, f"rule set {name!r}: the published hash is not the manifest's")
        if file in c.names and c.read(file).decode("utf-8", "replace") != state.get("content"):
            c.fail(file, f"differs from the content the ledger published for {name!r}")
        if (rs.get("content_hash_is_file_sha256") and file in c.names
                and b.sha256_hex(c.read(file)) != rs["content_hash"]):
            c.fail(file, f"its SHA-256 is not rule set {name!r}'s content hash")


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {value!r}") from None


def _amounts(c: _Check, encounters: list[dict[str, Any]]) -> None:
    expl, totals = c.json(b.EXPLANATIONS), c.json(b.TOTALS)
    if not isinstance(expl, dict) or not isinstance(totals, dict):
        return
    try:
        _check_amounts(c, encounters, expl, totals)
    except (KeyError, TypeError, ValueError) as exc:
        c.fail(b.TOTALS, f"cannot recompute the totals: {exc}")


def _check_amounts(c: _Check, encounters: list[dict[str, Any]], expl: dict[str, Any],
                   totals: dict[str, Any]) -> None:
    live = {e["encounter_id"]: e for e in encounters if not e.get("voided")}
    sums = {name: Decimal("0") for name in expl["rule_sets"]}
    explained = set()
    for item in expl["encounters"]:
        eid = item["encounter_id"]
        explained.add(eid)
        if eid not in live:
            c.fail(b.EXPLANATIONS, f"explains {item.get('encounter_ref')!r}, which is not a live "
                                   "encounter of the bundle")
        for name, data in item["by_rule_set"].items():
            amount = _dec(data["amount"])
            if sum((_dec(li["amount"]) for li in data["lines"]), Decimal("0")) != amount:
                c.fail(b.EXPLANATIONS, f"{item.get('encounter_ref')!r} under {name!r}: the lines "
                                       f"do not add up to {amount}")
            sums[name] += amount
    for eid in sorted(set(live) - explained):
        c.fail(b.EXPLANATIONS, f"encounter {live[eid].get('encounter_ref')!r} is not explained")
    base = None
    for t in totals["rule_sets"]:
        name, total = t["name"], _dec(t["total"])
        base = total if base is None else base
        if total != sums.get(name):
            c.fail(b.TOTALS, f"total of {name!r} is {total}, the explanations add up to "
                             f"{sums.get(name)}")
        if _dec(t["difference_vs_base"]) != total - base:
            c.fail(b.TOTALS, f"difference of {name!r} is not its total minus the base total")
    paid = [b.latest_paid(e["events"]) for e in live.values()]
    recomputed = sum((p for p in paid if p is not None), Decimal("0"))
    if _dec(totals["insurer_paid"]["total"]) != recomputed:
        c.fail(b.TOTALS, f"insurer paid total {totals['insurer_paid']['total']} differs from the "
                         f"decisions in the events ({recomputed})")
