"""The composition root: settings from the environment, the database, the ledger's schema.

The only place that reads ``os.environ``. Everything below receives explicit values.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from platformdirs import user_data_dir

from ledger import domain
from ledger.settings import Settings
from ops.database import Connection, connect_embedded


def settings_from_env(*, demo: bool = False, actor: str | None = None) -> Settings:
    """Build the settings from ``CLAIMS_*`` variables (see formats.md §4)."""
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


def open_database(settings: Settings, *, init: bool = True) -> Connection:
    """The ledger's database (embedded unless ``CLAIMS_DATABASE_URL``), schema ensured."""
    domain.current_actor.set(settings.actor)
    if settings.database_url:
        conn = Connection(settings.database_url)
    else:
        settings.home.mkdir(parents=True, exist_ok=True)
        conn = connect_embedded(settings.home)
    if init:
        from ledger.store import init_schema

        init_schema(conn, conn.library_env())
    return conn
