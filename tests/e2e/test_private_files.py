"""The embedded server asks for a password, and what the CLI writes is its user's alone.

Runs the real ``claims`` command (its ``main``, which sets the process's umask) in subprocesses
on a fresh CLAIMS_HOME with the embedded server, stopped at the end.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ops.database import CREDENTIALS_FILE, EMBEDDED_DIRNAME


def _claims(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    env.update(CLAIMS_HOME=str(home), CLAIMS_PSEUDONYM_KEY="private-files-key-0123456789")
    return subprocess.run([sys.executable, "-c", "from cli.main import main; main()", *args],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def home() -> Iterator[Path]:
    # Not under pytest's folder: the server runs as another user (see tests/conftest.py).
    with tempfile.TemporaryDirectory(prefix="claims-private-") as tmp:
        path = Path(tmp) / "h"
        try:
            yield path
        finally:
            _claims(path, "stop")


def _url(home: Path, password: str) -> str:
    return f"postgresql://postgres:{password}@/claims?host={home / EMBEDDED_DIRNAME}"


def test_a_wrong_password_is_refused_and_written_files_are_private(home: Path) -> None:
    out = home / "out"
    steps = (["init"],
             ["synth", str(out / "data"), "--associations", "1", "--encounters", "300",
              "--start", "2023-01-01", "--end", "2023-01-31", "--bad-rows", "3"],
             ["ingest", str(out / "data" / "encounters.csv")],
             ["compare", "historical", "parity", "--chart", str(out / "cost.png"),
              "--html", str(out / "cost.html")],
             ["audit", "extract", "--association", "SOS-75", "--from", "2023-01-01",
              "--to", "2023-01-31", "--out", str(out / "bundle")])
    for args in steps:
        done = _claims(home, *args)
        assert done.returncode in (0, 1), (args, done.stderr)

    password = (home / CREDENTIALS_FILE).read_text().strip()
    with psycopg.connect(_url(home, password), connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    for wrong in ("wrong", ""):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(_url(home, wrong), connect_timeout=10)

    written = [p for p in home.rglob("*")
               if EMBEDDED_DIRNAME not in p.relative_to(home).parts]
    assert (out / "bundle" / "manifest.json") in written and (out / "cost.png") in written
    assert any(p.suffix == ".parquet" for p in written)  # the snapshot cache
    loose = [(str(p), oct(stat.S_IMODE(p.stat().st_mode))) for p in written
             if p.stat().st_mode & 0o077]
    assert loose == []
    assert stat.S_IMODE((home / CREDENTIALS_FILE).stat().st_mode) == 0o600
