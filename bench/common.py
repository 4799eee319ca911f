"""What the benchmarks share: synthetic exports and fresh databases on a private server."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from ledger.store import init_schema
from ops.database import Connection, ensure_database, start_server


def synth(out: Path, encounters: int, associations: int, seed: int = 42) -> Any:
    """One synthetic year (2023) of exports; returns the ``SynthResult``."""
    from ledger.synth import generate

    return generate(out, associations=associations, start=date(2023, 1, 1),
                    end=date(2023, 12, 31), encounters=encounters, seed=seed)


def fresh(admin_url: str, name: str) -> Connection:
    """An empty ledger database ``name`` (dropped first if it exists)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn_info = Connection(ensure_database(admin_url, name))
    init_schema(conn_info, conn_info.library_env())
    return conn_info


@contextmanager
def private_server(prefix: str) -> Iterator[tuple[str, Path]]:
    """A private embedded PostgreSQL in a temporary folder: ``(admin URL, folder)``; stopped and
    removed on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        server = start_server(work / "pg", cleanup_mode="stop")
        try:
            yield server.get_uri(), work
        finally:
            server.cleanup()
