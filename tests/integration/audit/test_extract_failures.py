"""A failed audit extract leaves nothing: no bundle, no ``.audit-*`` temporary, no digest."""

from __future__ import annotations

import errno
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from audit.collect import ExtractError
from audit.digest import list_digests, record_digest
from audit.extract import extract
from cli import audit_cmd
from ops.database import Connection
from tests.integration.audit.conftest import A, FakeRules
from tests.integration.conftest import KEY, SEALER

runner = CliRunner()
root = typer.Typer()
root.add_typer(audit_cmd.app, name="audit")
root.command("verify")(audit_cmd.verify)

SEPT = (date(2023, 9, 1), date(2023, 9, 30))


class Injected(RuntimeError):
    pass


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".audit-", "case")))


def test_unknown_association_exits_1_and_records_nothing(
        two_associations: Any, ledger_db: Connection, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.extract.LibraryRules", FakeRules)
    env = {"CLAIMS_DATABASE_URL": ledger_db.url, "CLAIMS_HOME": str(tmp_path / "home"),
           "CLAIMS_ACTOR": "counsel", "CLAIMS_PSEUDONYM_KEY": KEY.decode()}
    record_digest(two_associations, actor="before")
    before = list_digests(two_associations)
    out = tmp_path / "out" / "case"
    result = runner.invoke(root, ["audit", "extract", "--association", "SOS-99", "--from",
                                  "2023-09-01", "--to", "2023-09-30", "--out", str(out)],
                           env=env)
    assert result.exit_code == 1, result.output
    assert "no encounter of association 'SOS-99' in the ledger" in result.stderr
    assert list_digests(two_associations) == before
    assert not out.exists() and not out.parent.exists()


@pytest.mark.parametrize("as_zip", [False, True])
def test_failure_while_writing_leaves_no_bundle_temporary_or_digest(
        two_associations: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        as_zip: bool) -> None:
    written: list[Path] = []
    real_write_bytes = Path.write_bytes

    def write_then_fail(self: Path, data: Any) -> int:
        if len(written) == 3:  # the disk fills up after three of the bundle's files
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        written.append(self)
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_then_fail)
    before = list_digests(two_associations)
    with pytest.raises(ExtractError, match=r"could not write the bundle .*No space left"):
        extract(two_associations, A, *SEPT, ["historical", "parity"], tmp_path / "case",
                sealer=SEALER,
                actor="lawyer@test", rules=FakeRules(), as_zip=as_zip)
    assert len(written) == 3
    assert _leftovers(tmp_path) == []
    assert list_digests(two_associations) == before


def test_failure_while_zipping_leaves_no_partial_zip(
        two_associations: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def zip_half(folder: Path, target: Path) -> None:
        with zipfile.ZipFile(target, "w") as zf:
            zf.writestr("manifest.json", "{}")
        raise Injected("killed while zipping")

    monkeypatch.setattr("audit.extract._zip", zip_half)
    before = list_digests(two_associations)
    with pytest.raises(Injected):
        extract(two_associations, A, *SEPT, ["historical", "parity"], tmp_path / "case",
                sealer=SEALER,
                actor="lawyer@test", rules=FakeRules(), as_zip=True)
    assert _leftovers(tmp_path) == []
    assert list_digests(two_associations) == before


def test_failure_placing_the_bundle_records_no_digest(
        two_associations: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_rename = Path.rename

    def refuse(self: Path, target: Any) -> Path:
        if Path(target).name == "case":
            raise Injected("rename refused")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", refuse)
    before = list_digests(two_associations)
    with pytest.raises(Injected):
        extract(two_associations, A, *SEPT, ["historical", "parity"], tmp_path / "case",
                sealer=SEALER,
                actor="lawyer@test", rules=FakeRules())
    assert _leftovers(tmp_path) == []
    assert list_digests(two_associations) == before


def test_a_successful_extract_records_one_digest_for_its_bundle(
        two_associations: Any, tmp_path: Path) -> None:
    before = len(list_digests(two_associations))
    summary = extract(two_associations, A, *SEPT, ["historical", "parity"], tmp_path / "case",
                sealer=SEALER,
                      actor="lawyer@test", rules=FakeRules())
    assert summary.path == tmp_path / "case" and (summary.path / "manifest.json").is_file()
    digests = list_digests(two_associations)
    assert len(digests) == before + 1 and digests[-1].merkle_root == summary.merkle_root
    assert _leftovers(tmp_path) == ["case"]
