"""Audit extracts on a real PostgreSQL: verified offline, tamper-evident, one association only."""

from __future__ import annotations

import json
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from audit import bundle as b
from audit.bundle_verify import verify_bundle
from audit.collect import ChainBrokenError
from audit.digest import list_digests
from audit.extract import BundleSummary, extract
from ledger.domain import encounter_id
from ledger.seal import Sealer
from tests.integration.audit.conftest import B_PATIENTS, B_REFS, DOCTOR_B, A, B, FakeRules
from tests.integration.audit.test_chain import _as_superuser, _position_of_b
from tests.integration.conftest import SEALER

SEPT = (date(2023, 9, 1), date(2023, 9, 30))


def _extract(conn: Any, out: Path, **kw: Any) -> BundleSummary:
    return extract(conn, A, *SEPT, ["historical", "parity"], out, actor="lawyer@test",
                   sealer=SEALER, rules=FakeRules(), **kw)


def test_extract_verifies_and_adds_up(two_associations: Any, tmp_path: Path) -> None:
    summary = _extract(two_associations, tmp_path / "bundle")
    assert verify_bundle(summary.path) == []
    assert summary.encounters == 3  # E-A4 is in October
    historical, parity = summary.totals
    # E-A1 SOS visit 35, E-A2 SAS consultation 25+15, E-A3 C15 consultation 25+15.
    assert historical.total == Decimal("115.00")
    assert parity.total == Decimal("130.00") and parity.difference == Decimal("15.00")
    assert summary.insurer_paid == Decimal("75.00")
    lines = (summary.path / b.ENCOUNTERS).read_text().splitlines()
    first = json.loads(lines[0])
    assert first["encounter_ref"] == "E-A1"
    topics = [e["topic"].rsplit(".", 1)[-1] for e in first["events"]]
    assert topics == ["Recorded", "Corrected", "Decided"]
    assert first["events"][0]["provenance"]["file_name"] == "mixed.csv"
    manifest = json.loads((summary.path / b.MANIFEST).read_text())
    assert manifest["ledger"]["chain_head_link"] == summary.chain_head
    assert list_digests(two_associations)[-1].merkle_root == summary.merkle_root


def test_zip_bundle_and_encounter_list(two_associations: Any, tmp_path: Path) -> None:
    summary = _extract(two_associations, tmp_path / "only", encounter_refs=["E-A2", "E-X"],
                       as_zip=True)
    assert summary.path.suffix == ".zip" and summary.encounters == 1
    assert summary.missing_refs == ["E-X"]
    assert verify_bundle(summary.path) == []
    # A second extract after more events still verifies: the proofs are against its own head.
    again = _extract(two_associations, tmp_path / "again")
    assert verify_bundle(again.path) == [] and again.position > summary.position - 1


def test_each_changed_byte_is_named(two_associations: Any, tmp_path: Path) -> None:
    summary = _extract(two_associations, tmp_path / "bundle")
    files = sorted(p for p in summary.path.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {b.MANIFEST, b.SEAL, b.REPORT, b.PROOFS, b.README}
    for path in files:
        original = path.read_bytes()
        changed = bytearray(original)
        i = len(changed) // 2
        changed[i] = changed[i] ^ 0x01
        path.write_bytes(bytes(changed))
        name = path.relative_to(summary.path).as_posix()
        problems = verify_bundle(summary.path)
        assert problems, f"a changed byte in {name} went unnoticed"
        assert any(name in p.render() for p in problems), (name, problems)
        path.write_bytes(original)
    assert verify_bundle(summary.path) == []


def test_consistent_forgery_is_still_caught(two_associations: Any, tmp_path: Path) -> None:
    """Rewriting an amount and re-hashing every file still breaks the event's proof."""
    summary = _extract(two_associations, tmp_path / "bundle")
    path = summary.path / b.ENCOUNTERS
    path.write_text(path.read_text().replace("45.00", "55.00"))
    _reseal(summary.path)
    problems = verify_bundle(summary.path)
    assert any("does not match its proof's leaf" in p.message for p in problems), problems


def test_no_value_of_another_association(two_associations: Any, tmp_path: Path) -> None:
    conn = two_associations
    summary = _extract(conn, tmp_path / "bundle")
    b_ids = [str(encounter_id(B, ref)) for ref in B_REFS]
    pseudonyms = [r[0] for r in conn.execute(
        "SELECT DISTINCT patient_pseudonym FROM encounter_fact_versions WHERE association = %s",
        (B,)).fetchall()]
    forbidden = [B, DOCTOR_B, *B_REFS, *B_PATIENTS, *b_ids, *pseudonyms, "B92"]
    texts = {p.name: p.read_bytes().decode("latin-1") for p in summary.path.rglob("*")
             if p.is_file()}
    texts["report.pdf (text)"] = _pdf_text(summary.path / b.REPORT)
    for name, text in texts.items():
        for value in forbidden:
            assert value not in text, f"{value!r} of association {B} found in {name}"
    # And no patient identifier of A in clear either.
    for name, text in texts.items():
        assert "PA-1" not in text and "PA-2" not in text, name


def test_report_pdf_renders_and_cites_hashes(two_associations: Any, tmp_path: Path) -> None:
    import pypdfium2 as pdfium
    from PIL import ImageStat

    summary = _extract(two_associations, tmp_path / "bundle")
    pdf = pdfium.PdfDocument(str(summary.path / b.REPORT))
    try:
        assert len(pdf) >= 3
        image = pdf[0].render(scale=1).to_pil().convert("L")
        assert ImageStat.Stat(image).stddev[0] > 5, "page 1 is blank"
    finally:
        pdf.close()
    text = _pdf_text(summary.path / b.REPORT)
    assert summary.chain_head in text and summary.merkle_root in text
    for total in summary.totals:
        assert total.content_hash in text
    assert "E-A3" in text and "115.00" in text


def test_no_extract_from_a_tampered_ledger(two_associations: Any, tmp_path: Path) -> None:
    conn = two_associations
    pos = _position_of_b(conn)
    _as_superuser(conn, "UPDATE claimsledger_events SET originator_version = 9 "
                        "WHERE notification_id = %s", (pos,))
    with pytest.raises(ChainBrokenError, match=f"position {pos}"):
        _extract(conn, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def _pdf_text(path: Path) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in pdf)
    finally:
        pdf.close()


def test_zip_member_changed(two_associations: Any, tmp_path: Path) -> None:
    summary = _extract(two_associations, tmp_path / "z", as_zip=True)
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(summary.path) as src, zipfile.ZipFile(forged, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == b.TOTALS:
                data = data.replace(b"115.00", b"215.00")
            dst.writestr(item, data)
    problems = verify_bundle(forged)
    assert any(p.file == b.TOTALS for p in problems)


def test_with_the_project_rule_engine(two_associations: Any, tmp_path: Path) -> None:
    """An extract with the project's real tariff engine verifies, and its totals make sense."""
    summary = extract(two_associations, A, *SEPT, ["historical", "parity"], tmp_path / "real",
                      sealer=SEALER,
                      actor="lawyer@test")
    assert verify_bundle(summary.path) == []
    difference = summary.totals[1].difference
    assert difference >= 0  # parity never pays less than historical
    assert difference % 15 == 0  # the two rule sets differ only by the 15 € SNP


class _PlanSpy:
    """A connection that notes, for each query of interest, how its plan was constrained."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.seen = conn, []

    def execute(self, query: Any, *args: Any, **kw: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(self.conn)
        for marker in ("originator_id = ANY", "doctor_rpps = ANY"):
            if marker in text:
                row = self.conn.execute("SHOW enable_seqscan").fetchone()
                self.seen.append((marker, row[0]))
        return self.conn.execute(query, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_the_extract_reads_events_by_the_primary_key_and_only_them(
        two_associations: Any, tmp_path: Path) -> None:
    # Without statistics (a bulk-loaded ledger) the planner scans the whole events table for a
    # chunk of ids (954 ms against 57 ms a chunk on the national ledger): ``ledger.lookups``.
    spy = _PlanSpy(two_associations)
    _extract(spy, tmp_path / "bundle")
    assert ("originator_id = ANY", "off") in spy.seen
    assert ("doctor_rpps = ANY", "on") in spy.seen  # the other queries keep their plans
    assert {setting for marker, setting in spy.seen if marker == "originator_id = ANY"} == {"off"}


def _reseal(bundle: Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Re-hash every file into the manifest and re-seal it, as a forger who knows the format
    would (he cannot sign it with the ledger's key); returns the manifest."""
    manifest = manifest or json.loads((bundle / b.MANIFEST).read_text())
    for entry in manifest["files"]:
        entry["sha256"] = b.sha256_hex((bundle / entry["path"]).read_bytes())
    raw = b.json_bytes(manifest)
    (bundle / b.MANIFEST).write_bytes(raw)
    (bundle / b.SEAL).write_text(b.seal_text(raw))
    return manifest


def _forge(bundle: Path, change: Any) -> list[str]:
    """Apply ``change`` to the encounters and re-seal (``_reseal``); the problems the verifier
    then finds."""
    path = bundle / b.ENCOUNTERS
    items = [json.loads(line) for line in path.read_text().splitlines()]
    change(items)
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    _reseal(bundle)
    return [p.message for p in verify_bundle(bundle)]


def test_an_event_grafted_onto_another_encounter_is_caught(two_associations: Any,
                                                           tmp_path: Path) -> None:
    summary = _extract(two_associations, tmp_path / "bundle")

    def graft(items: list[dict[str, Any]]) -> None:
        donor = next(i for i in items if any(e["topic"].endswith("Decided") for e in i["events"]))
        taker = next(i for i in items if i is not donor)
        decided = next(e for e in donor["events"] if e["topic"].endswith("Decided"))
        taker["events"].append(decided)  # its proof is genuine: only its filing is forged

    problems = _forge(summary.path, graft)
    assert any("is filed under encounter" in m for m in problems), problems


def test_an_event_left_out_of_a_history_is_caught(two_associations: Any,
                                                  tmp_path: Path) -> None:
    summary = _extract(two_associations, tmp_path / "bundle")

    def cut(items: list[dict[str, Any]]) -> None:
        item = next(i for i in items if len(i["events"]) > 1)
        del item["events"][0]

    problems = _forge(summary.path, cut)
    assert any("history is not whole" in m for m in problems), problems


def test_an_encounter_marked_voided_without_a_void_is_caught(two_associations: Any,
                                                             tmp_path: Path) -> None:
    summary = _extract(two_associations, tmp_path / "bundle")

    def void(items: list[dict[str, Any]]) -> None:
        next(i for i in items if not i["voided"])["voided"] = True

    problems = _forge(summary.path, void)
    assert any("is marked voided, but its last facts event is Encounter.Recorded" in m
               or "is marked voided, but its last facts event is Encounter.Corrected" in m
               for m in problems), problems


def test_a_replaced_report_is_caught_by_the_signature(two_associations: Any,
                                                      tmp_path: Path) -> None:
    summary = _extract(two_associations, tmp_path / "bundle")
    bundle = summary.path
    assert verify_bundle(bundle, SEALER.public_key()) == []
    (bundle / b.REPORT).write_bytes(b"%PDF-1.4 another association's report")
    manifest = _reseal(bundle)
    # Re-hashed and re-sealed, but the forger cannot sign with the ledger's key...
    assert [p.file for p in verify_bundle(bundle)] == [b.SIGNATURE]
    # ...so he signs with his own, and names it: only the ledger's published key tells.
    forger = Sealer(b"the forger's own key")
    manifest["ledger"]["public_key"] = forger.public_key().hex()
    _reseal(bundle, manifest)
    (bundle / b.SIGNATURE).write_text(
        b.signature_text(forger.sign((bundle / b.MANIFEST).read_bytes())))
    assert verify_bundle(bundle) == []
    problems = verify_bundle(bundle, SEALER.public_key())
    assert [p.message for p in problems] == [
        f"signed with the key {forger.public_key().hex()}, not the ledger's "
        f"({SEALER.public_key().hex()}): not made by this ledger"]
