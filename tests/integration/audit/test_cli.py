"""``claims audit extract``, ``claims audit digest`` and ``claims verify`` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from audit.digest import Digest, record_digest, signed_by
from cli import audit_cmd
from ledger.application import EVENTS_TABLE
from ledger.seal import Sealer
from ops.database import Connection
from tests.integration.audit.conftest import FakeRules
from tests.integration.audit.test_chain import _as_superuser, _position_of_b
from tests.integration.conftest import KEY, SEALER

runner = CliRunner()
root = typer.Typer()
root.add_typer(audit_cmd.app, name="audit")
root.command("verify")(audit_cmd.verify)


@pytest.fixture
def env(ledger_db: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr("audit.extract.LibraryRules", FakeRules)
    return {"CLAIMS_DATABASE_URL": ledger_db.url, "CLAIMS_HOME": str(tmp_path / "home"),
            "CLAIMS_ACTOR": "counsel", "CLAIMS_PSEUDONYM_KEY": KEY.decode()}


def test_extract_then_verify_bundle_and_ledger(two_associations: Any, env: dict[str, str],
                                               tmp_path: Path) -> None:
    refs = tmp_path / "refs.txt"
    refs.write_text("# disputed\nE-A1\nE-A2\n")
    out = tmp_path / "case"
    result = runner.invoke(root, ["audit", "extract", "--association", "SOS-75", "--from",
                                  "2023-09-01", "--to", "30/09/2023", "--encounters", str(refs),
                                  "--out", str(out), "--zip", "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["encounters"] == 2 and summary["path"].endswith("case.zip")
    assert [t["total"] for t in summary["totals"]] == ["75.00", "90.00"]

    result = runner.invoke(root, ["verify", summary["path"]], env=env)
    assert result.exit_code == 0 and "OK" in result.stdout
    key = runner.invoke(root, ["audit", "key"], env=env)
    assert key.exit_code == 0 and key.stdout.strip() == SEALER.public_key().hex()
    result = runner.invoke(root, ["verify", summary["path"], "--public-key", key.stdout], env=env)
    assert result.exit_code == 0 and "the ledger's key given" in result.stdout
    other = Sealer(b"another ledger").public_key().hex()
    result = runner.invoke(root, ["verify", summary["path"], "--public-key", other], env=env)
    assert result.exit_code == 1 and "not made by this ledger" in result.output
    result = runner.invoke(root, ["verify", summary["path"], "--public-key", "12ab"], env=env)
    assert result.exit_code == 2 and "64 hexadecimal digits" in result.output
    result = runner.invoke(root, ["verify"], env=env)
    assert result.exit_code == 0 and "chain OK" in result.stdout
    assert "1 digests checked" in result.stdout  # the extract recorded one

    result = runner.invoke(root, ["audit", "digest", "--note", "sent to CPAM"], env=env)
    assert result.exit_code == 0 and "sent to CPAM" in result.stdout
    result = runner.invoke(root, ["audit", "digest", "--list", "--json"], env=env)
    digests = [Digest(**{**d, "recorded_at": None}) for d in json.loads(result.stdout)]
    assert len(digests) == 2  # the extract's, then this one: both signed by the ledger
    assert all(signed_by(d, SEALER.public_key()) for d in digests)
    assert not signed_by(digests[0], Sealer(b"another ledger").public_key())
    changed = Digest(**{**digests[1].__dict__, "position": digests[1].position - 1})
    assert not signed_by(changed, SEALER.public_key())

    # A digest recorded by hand under another key (one who may INSERT): an alarm.
    forger = Sealer(b"the forger's key")
    record_digest(two_associations, actor="forger", sealer=forger)
    result = runner.invoke(root, ["verify"], env=env)
    assert result.exit_code == 1 and "1 recorded digest(s)" in result.output, result.output


def test_verify_names_the_broken_position_and_file(two_associations: Any, env: dict[str, str],
                                                   tmp_path: Path) -> None:
    out = tmp_path / "case"
    args = ["audit", "extract", "--association", "SOS-75", "--from", "2023-09-01", "--to",
            "2023-09-30", "--out", str(out)]
    assert runner.invoke(root, args, env=env).exit_code == 0
    totals = out / "totals.json"
    totals.write_text(totals.read_text().replace("115.00", "116.00"))
    result = runner.invoke(root, ["verify", str(out)], env=env)
    assert result.exit_code == 1 and "totals.json" in result.stderr

    pos = _position_of_b(two_associations)
    _as_superuser(two_associations, f"UPDATE {EVENTS_TABLE} SET topic = topic || 'x' "
                                    "WHERE notification_id = %s", (pos,))
    result = runner.invoke(root, ["verify"], env=env)
    assert result.exit_code == 1 and f"position {pos}" in result.stderr
    result = runner.invoke(root, [*args[:-1], str(tmp_path / "other")], env=env)
    assert result.exit_code == 1 and f"chain broken at position {pos}" in result.stderr


def test_usage_errors_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(root, ["audit", "extract", "--association", "SOS-75", "--from",
                                  "2023-13-01", "--to", "2023-09-30", "--out",
                                  str(tmp_path / "x")], env=env)
    assert result.exit_code == 2
