from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.database import Connection

KEY = "e2e-key-0123456789abcdef"


@pytest.fixture
def cli_env(db: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI pointed at a fresh database (CLAIMS_DATABASE_URL) and its own CLAIMS_HOME."""
    monkeypatch.setenv("CLAIMS_DATABASE_URL", db.url)
    monkeypatch.setenv("CLAIMS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAIMS_PSEUDONYM_KEY", KEY)
    yield tmp_path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
