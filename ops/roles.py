"""Database roles: an owner for migrations, an append-only application role, a reader.

``create_roles`` applies ``ops/roles.sql`` (idempotent) and sets the two login roles' passwords.
See ``ops/roles.md`` for what each role may do and how the CLI connects with them.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from psycopg import sql

OWNER = "claims_owner"
APP = "claims_app"
READER = "claims_reader"


class RolesError(Exception):
    """The roles cannot be created here (no ledger schema yet, or not enough privileges)."""


def roles_sql() -> str:
    """The text of ``ops/roles.sql``."""
    return resources.files("ops").joinpath("roles.sql").read_text(encoding="utf-8")


def create_roles(conn: Any, app_password: str, reader_password: str) -> None:
    """Create or update the ledger's roles and their privileges in this database.

    Args:
        conn: an autocommit psycopg connection to the ledger database, as a superuser or a
            role with CREATEROLE that owns the ledger's tables.
        app_password: the password of ``claims_app``.
        reader_password: the password of ``claims_reader``.

    Raises:
        RolesError: the ledger schema (``ops/sql/schema.sql``, digests included) does not
            exist yet (run ``claims init`` first) or a password is empty.
    """
    if not app_password or not reader_password:
        raise RolesError("both passwords are required (they have no default)")
    for table in ("claims_chain", "claims_chain_digests"):
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            raise RolesError("the ledger schema does not exist here, or predates this version: "
                             "run `claims init` first")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('claims-roles'))")
        conn.execute(roles_sql())
        for role, password in ((APP, app_password), (READER, reader_password)):
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)))
