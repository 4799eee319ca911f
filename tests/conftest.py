"""Shared fixtures: one real PostgreSQL server per test session, a fresh database per test.

The server is the same embedded (pip-installed) PostgreSQL the CLI uses, so CI needs no system
database. It is stopped when the session ends. Set ``CLAIMS_TEST_DATABASE_URL`` to run the suite
against an external server instead (each test still gets its own database).
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ops.database import Connection, start_server

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    external = os.environ.get("CLAIMS_TEST_DATABASE_URL")
    if external:
        yield external
        return
    # Not under pytest's own temporary folder: the server runs as another user, and any other
    # pytest session started as root resets that folder to owner-only access.
    with tempfile.TemporaryDirectory(prefix="claims-test-pg-") as tmp:
        server = start_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


def _replace_db(url: str, name: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url)._replace(path=f"/{name}").geturl()


@pytest.fixture
def db(pg_admin_url: str) -> Iterator[Connection]:
    """A fresh, empty database on the session's server, dropped after the test."""
    yield from _fresh_db(pg_admin_url)


@pytest.fixture
def other_db(pg_admin_url: str) -> Iterator[Connection]:
    """A second fresh database, for tests that compare two ledgers."""
    yield from _fresh_db(pg_admin_url)


def _fresh_db(pg_admin_url: str) -> Iterator[Connection]:
    name = f"t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Connection(_replace_db(pg_admin_url, name))
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fetch_one(conn: Connection, sql: str, params: Any = None) -> Any:
    with conn.connect() as c:
        row = c.execute(sql, params).fetchone()
        return None if row is None else row[0]
