"""Audit extracts: one association's encounters for a period, verifiable offline by anyone.

``extract`` publishes the rule sets it uses into the ledger, reads a consistent snapshot
(``audit.collect``), explains every encounter under every rule set, and writes the bundle
described in ``audit/docs.md`` (a folder, or a zip): manifest, full event histories with
provenance, explanations, totals, Merkle inclusion proofs tied to the chain head, the rule sets'
canonical content, a PDF report and a README. It never contains another association's data.

All or nothing: the bundle is written into a ``.audit-*`` folder beside the target and renamed
onto it at the end, in the same step as its digest is recorded in ``claims_chain_digests``; a
failure removes the temporary and records nothing (a killed process can leave only a ``.audit-*``
folder, never a partial bundle or a digest of one).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from audit import bundle as b
from audit.collect import Collected, ExtractError, collect
from audit.digest import insert_digest
from audit.readme import readme_text
from audit.records import StoredEventRecord, event_json
from ledger.publish import RuleSetContent, publish_rule_sets
from ledger.seal import Sealer
from ledger.vocabulary import PARIS
from projections.facts import EncounterFacts


class RulesEngine(Protocol):
    """What an extract needs from the tariff rule engine (``projections.rules``)."""

    def load(self, name: str) -> Any:
        """A rule set with ``.name``, ``.content_hash`` and ``.to_canonical_json()``."""
        ...

    def explain_many(self, rule_set: Any, facts: Sequence[EncounterFacts]) -> Mapping[str, Any]:
        """Explanations (``.amount``, ``.lines``) by encounter id."""
        ...


class LibraryRules:
    """The project's rule engine (imported lazily: it is optional for the rest of the ledger)."""

    def load(self, name: str) -> Any:
        from projections.rules.loader import load_rule_set

        return load_rule_set(name)

    def explain_many(self, rule_set: Any, facts: Sequence[EncounterFacts]) -> Mapping[str, Any]:
        from projections.rules.interpreter import explain_many

        return explain_many(rule_set, facts)


@dataclass(frozen=True)
class RuleSetTotal:
    name: str
    content_hash: str
    encounters: int
    total: Decimal
    difference: Decimal  # total − the first rule set's total


@dataclass
class BundleSummary:
    """What was written: where, for what, at which ledger position, with which totals."""

    path: Path
    association: str
    date_from: date
    date_to: date
    position: int
    chain_head: str
    merkle_root: str
    encounters: int
    events: int
    totals: list[RuleSetTotal]
    insurer_paid: Decimal
    missing_refs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def extract(
    conn: Any,
    association: str,
    date_from: date,
    date_to: date,
    rule_set_names: Sequence[str],
    out: Path,
    encounter_refs: list[str] | None = None,
    *,
    actor: str,
    as_zip: bool = False,
    rules: RulesEngine | None = None,
    now: datetime | None = None,
    sealer: Sealer | None = None,
) -> BundleSummary:
    """Write the audit bundle of one association and period.

    Args:
        conn: an open autocommit psycopg connection to the ledger database.
        association: the association's code (``SOS-75``).
        date_from: first day of the period (act date, Paris time).
        date_to: last day of the period, included.
        rule_set_names: rule sets to explain under; the first is the base of the differences.
        out: the folder to create (must not exist or be empty), or the zip file with ``as_zip``.
        encounter_refs: only these encounters of the association and period.
        actor: who makes the extract (recorded in the manifest and the ledger's digests).
        as_zip: write a zip file instead of a folder.
        rules: the rule engine (the project's by default).
        now: the extract's time (default: the current time).
        sealer: the ledger's key: signs the bundle's manifest, and seals the log when rule
            sets must be published first (``publish_rule_sets``). Required.

    Returns:
        A ``BundleSummary``; the extract's digest is recorded only once the bundle is in place.
        Raises ``ExtractError`` (``ChainBrokenError`` when the chain does not verify: no extract
        is issued from a tampered log); then neither ``out`` nor a digest is left.
    """
    if not rule_set_names:
        raise ExtractError("at least one rule set is needed")
    if date_to < date_from:
        raise ExtractError(f"the period ends ({date_to}) before it starts ({date_from})")
    if sealer is None:
        raise ExtractError("an audit extract is signed with the ledger's key: set "
                           "CLAIMS_PSEUDONYM_KEY")
    target = out.with_suffix(".zip") if as_zip and out.suffix != ".zip" else out
    _check_target(target)
    engine = rules or LibraryRules()
    rule_sets = [engine.load(n) for n in dict.fromkeys(rule_set_names)]
    _require_association(conn, association)
    publish_rule_sets(conn, [RuleSetContent(rs.name, rs.to_canonical_json(), rs.content_hash)
                             for rs in rule_sets], sealer)
    created = now or datetime.now(tz=PARIS)
    note = f"audit extract {association} {date_from}..{date_to}"
    got = collect(conn, association, date_from, date_to, rule_sets, encounter_refs)
    staging: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".audit-", dir=target.parent))
        folder = staging / "bundle"
        summary = _write(folder, got, rule_sets, engine, association, date_from, date_to,
                         encounter_refs, actor, created, sealer)
        produced = folder
        if as_zip:
            produced = staging / "bundle.zip"
            _zip(folder, produced)
        _place_and_record(conn, got, produced, target, actor, note, sealer)
        summary.path = target
    except OSError as exc:
        raise ExtractError(f"could not write the bundle {target}: {exc}") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return summary


def _require_association(conn: Any, association: str) -> None:
    """Refuse an association the ledger has never seen (before anything is written)."""
    from projections import facts_table

    facts_table.catch_up(conn)
    known = conn.execute("SELECT 1 FROM encounter_fact_versions WHERE association = %s "
                         "LIMIT 1", (association,)).fetchone()
    if known is None:
        raise ExtractError(f"no encounter of association {association!r} in the ledger")


def _check_target(target: Path) -> None:
    if target.exists() and (target.is_file() or any(target.iterdir())):
        raise ExtractError(f"{target} already exists and is not empty: choose another --out")


def _place_and_record(conn: Any, got: Collected, produced: Path, target: Path, actor: str,
                      note: str, sealer: Sealer) -> None:
    """Rename the finished bundle onto ``target`` and record its digest, both or neither.

    The digest is inserted in a transaction committed only after the rename; if the rename
    fails nothing is recorded, and if the commit fails the bundle just placed is removed.
    """
    placed = False
    try:
        with conn.transaction():
            if got.position:
                got.digest = insert_digest(conn, got.position, got.head_link, actor=actor,
                                           merkle_root=got.merkle_root, note=note,
                                           sealer=sealer)
            _check_target(target)  # another process may have written there meanwhile
            produced.rename(target)  # atomic; replaces an empty folder
            placed = True
    except BaseException:
        if placed:
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        raise


def _zip(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(folder).as_posix())


def explanation_json(expl: Any) -> dict[str, Any]:
    """An explanation as plain JSON: amount and lines (code, amount, reference, why...)."""
    lines = []
    for line in getattr(expl, "lines", ()):
        item: dict[str, Any] = {"code": str(line.code), "amount": b.money(line.amount)}
        for key in ("reference", "why", "rule", "parameter", "value_date"):
            value = getattr(line, key, None)
            if value is not None:
                item[key] = b.to_jsonable(value)
        lines.append(item)
    out: dict[str, Any] = {"amount": b.money(expl.amount), "lines": lines}
    not_applied = getattr(expl, "not_applied", None)
    if not_applied:
        out["not_applied"] = b.to_jsonable(not_applied)
    return out


def _write(
    folder: Path, got: Collected, rule_sets: list[Any], engine: RulesEngine, association: str,
    date_from: date, date_to: date, refs: list[str] | None, actor: str, created: datetime,
    sealer: Sealer,
) -> BundleSummary:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / b.RULES_DIR).mkdir(exist_ok=True)
    files: dict[str, bytes] = {}
    histories = [[event_json(e) for e in enc.events] for enc in got.encounters]
    files[b.ENCOUNTERS] = b"".join(
        b.jsonl_line({"encounter_id": enc.encounter_id, "association": association,
                      "encounter_ref": enc.encounter_ref, "voided": enc.voided, "events": hist})
        for enc, hist in zip(got.encounters, histories, strict=True))
    files[b.RULE_EVENTS] = b"".join(
        b.jsonl_line({"name": rs.name, "content_hash": rs.content_hash,
                      "event": event_json(got.rule_events[rs.name])}) for rs in rule_sets)
    for rs in rule_sets:
        files[b.rule_file(rs.name)] = rs.to_canonical_json().encode("utf-8")

    live = [enc for enc in got.encounters if enc.facts is not None]
    per_encounter: dict[str, dict[str, Any]] = {
        enc.encounter_id: {"encounter_id": enc.encounter_id, "encounter_ref": enc.encounter_ref,
                           "by_rule_set": {}} for enc in live}
    totals: list[RuleSetTotal] = []
    for rs in rule_sets:
        explained = engine.explain_many(rs, got.context or [e.facts for e in live if e.facts])
        total = Decimal("0")
        for enc in live:
            data = explanation_json(explained[enc.encounter_id])
            per_encounter[enc.encounter_id]["by_rule_set"][rs.name] = data
            total += Decimal(data["amount"])
        base = totals[0].total if totals else total
        totals.append(RuleSetTotal(rs.name, rs.content_hash, len(live), total, total - base))
    paid = [b.latest_paid(hist) for enc, hist in zip(got.encounters, histories, strict=True)
            if enc.facts is not None]
    insurer_paid = sum((p for p in paid if p is not None), Decimal("0"))
    files[b.EXPLANATIONS] = b.json_bytes({
        "rule_sets": [rs.name for rs in rule_sets],
        "encounters": [per_encounter[enc.encounter_id] for enc in live]})
    files[b.TOTALS] = b.json_bytes({
        "currency": "EUR", "base": rule_sets[0].name, "encounters": len(live),
        "rule_sets": [{"name": t.name, "content_hash": t.content_hash,
                       "encounters": t.encounters, "total": b.money(t.total),
                       "difference_vs_base": b.money(t.difference)} for t in totals],
        "insurer_paid": {"total": b.money(insurer_paid),
                         "encounters_with_decision": sum(p is not None for p in paid),
                         "rule": "latest Encounter.Decided per encounter, voided excluded"}})
    included = [e for enc in got.encounters for e in enc.events] + [
        got.rule_events[rs.name] for rs in rule_sets]
    files[b.PROOFS] = b.json_bytes(_proofs(got, included))
    manifest: dict[str, Any] = {
        "format": b.FORMAT, "format_version": b.FORMAT_VERSION,
        "created_at": created.isoformat(), "created_by": actor, "tool": _tool(),
        "association": association,
        "period": {"from": date_from.isoformat(), "to": date_to.isoformat()},
        "encounter_refs": refs, "missing_refs": got.missing_refs,
        "ledger": {"position": got.position, "chain_head_link": got.head_link.hex(),
                   "merkle_root": got.merkle_root.hex(), "proof_scheme": b.PROOF_SCHEME,
                   "public_key": sealer.public_key().hex()},
        "counts": {"encounters": len(got.encounters), "explained": len(live),
                   "voided": len(got.encounters) - len(live),
                   "events": sum(len(e.events) for e in got.encounters)},
        "rule_sets": [{"name": rs.name, "content_hash": rs.content_hash,
                       "file": b.rule_file(rs.name),
                       "content_hash_is_file_sha256":
                           b.sha256_hex(files[b.rule_file(rs.name)]) == rs.content_hash,
                       "published_at_position": got.rule_events[rs.name].position}
                      for rs in rule_sets],
    }
    files[b.README] = readme_text(manifest).encode("utf-8")
    from audit.report_pdf import build_report

    files[b.REPORT] = build_report(manifest, totals, insurer_paid, got.encounters,
                                   per_encounter, [rs.name for rs in rule_sets])
    manifest["files"] = [{"path": name, "sha256": b.sha256_hex(data), "bytes": len(data)}
                         for name, data in sorted(files.items())]
    files[b.MANIFEST] = b.json_bytes(manifest)
    files[b.SEAL] = b.seal_text(files[b.MANIFEST]).encode("ascii")
    files[b.SIGNATURE] = b.signature_text(sealer.sign(files[b.MANIFEST])).encode("ascii")
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return BundleSummary(
        folder, association, date_from, date_to, got.position, got.head_link.hex(),
        got.merkle_root.hex(), len(got.encounters), manifest["counts"]["events"], totals,
        insurer_paid, got.missing_refs, sorted(files))


def _proofs(got: Collected, included: list[StoredEventRecord]) -> dict[str, Any]:
    from audit.merkle import leaf_hash
    from ledger.chain import event_digest_from_hash

    entries = []
    for e in sorted(included, key=lambda e: e.position):
        digest = event_digest_from_hash(e.position, e.originator_id, e.version, e.topic,
                                        hashlib.sha256(e.state_text.encode()).digest())
        entries.append({"position": e.position, "leaf": leaf_hash(digest).hex(),
                        "link_before": e.link_before.hex(), "link": e.link.hex(),
                        "path": [p.hex() for p in got.paths[e.position]]})
    return {"scheme": b.PROOF_SCHEME, "tree_size": got.position, "root": got.merkle_root.hex(),
            "chain_head": {"position": got.position, "link": got.head_link.hex()},
            "proofs": entries}


def _tool() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"claims-ledger {version('claims-ledger')}"
    except PackageNotFoundError:
        return "claims-ledger"
