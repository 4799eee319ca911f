"""Facts snapshots: the facts as known at a moment, exported from PostgreSQL to Parquet for DuckDB.

PostgreSQL stays the source of truth; a snapshot is a cache named by the projection's position and
the as-of time, so it is rebuilt whenever the ledger has moved on. DuckDB evaluates the compiled
rule sets over it (see ``projections/rules/docs.md`` for why DuckDB).
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from projections import facts_table
from projections.facts import FACT_COLUMNS

_SELECT = """
SELECT encounter_id::text, association, encounter_ref, regulation_origin, act, doctor_rpps,
       treating_doctor, pdsa, patient_birth_year, performed_at,
       (performed_at AT TIME ZONE 'Europe/Paris') AS performed_local,
       trunc(extract(epoch FROM performed_at - regulated_at))::bigint AS delay_seconds
FROM ({source}) f
"""

_CURRENT = "SELECT * FROM encounter_facts"
_AS_OF = """
SELECT * FROM (
    SELECT DISTINCT ON (encounter_id) * FROM encounter_fact_versions
    WHERE recorded_at <= %(as_of)s ORDER BY encounter_id, version DESC) v
WHERE NOT voided
"""


def facts_query(as_of: datetime | None) -> str:
    """The SQL (PostgreSQL) selecting the evaluator's columns, as known at ``as_of``."""
    return _SELECT.format(source=_AS_OF if as_of else _CURRENT)


_DECISIONS = """
SELECT d.encounter_id::text, d.decided_at, d.paid_amount, d.paid_codes, d.rejected_codes,
       d.reason
FROM (SELECT DISTINCT ON (encounter_id) * FROM encounter_decisions {where}
      ORDER BY encounter_id, version DESC) d
"""

DECISION_COLUMNS: dict[str, str] = {
    "encounter_id": "VARCHAR", "decided_at": "DATE", "paid_amount": "DECIMAL(12,2)",
    "paid_codes": "VARCHAR", "rejected_codes": "VARCHAR", "reason": "VARCHAR",
}


def snapshot(conn: Any, cache_dir: Path, as_of: datetime | None = None) -> Path:
    """A Parquet file of the facts as known at ``as_of`` (current if None), cached.

    Args:
        conn: an open psycopg connection to the ledger.
        cache_dir: where snapshots are kept (``CLAIMS_HOME/cache``).
        as_of: the moment whose knowledge to use; None for everything known now.

    Returns:
        The path of the Parquet file.
    """
    return _cached(conn, cache_dir, "facts", facts_query(as_of), FACT_COLUMNS, as_of)


def decisions_snapshot(conn: Any, cache_dir: Path, as_of: datetime | None = None) -> Path:
    """A Parquet file of each encounter's latest insurer decision as known at ``as_of``."""
    where = "WHERE recorded_at <= %(as_of)s" if as_of else ""
    return _cached(conn, cache_dir, "decisions", _DECISIONS.format(where=where),
                   DECISION_COLUMNS, as_of)


def _cached(conn: Any, cache_dir: Path, kind: str, query: str, columns_types: dict[str, str],
            as_of: datetime | None) -> Path:
    facts_table.catch_up(conn)
    position = facts_table.position(conn)
    # Keyed by the chain head, not only the position: a log rewritten under the same
    # position has another head, and the cache is not reused.
    row = conn.execute("SELECT link FROM claims_chain WHERE notification_id = %s",
                       (position,)).fetchone()
    head = bytes(row[0]).hex() if row else ""
    key = hashlib.sha256(f"{position}|{head}|{as_of.isoformat() if as_of else ''}".encode()
                         ).hexdigest()
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{kind}-{position}-{key[:12]}.parquet"
    if target.exists():
        return target
    for old in cache_dir.glob(f"{kind}-*.parquet"):
        if not old.name.startswith(f"{kind}-{position}-"):  # the ledger has moved on
            old.unlink(missing_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".csv", delete=False) as tmp:
        csv_path = Path(tmp.name)
        with conn.cursor() as cur:
            cur.execute("SET TimeZone = 'UTC'")
            params = {"as_of": as_of} if as_of else None
            with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)", params) as copy:
                for block in copy:
                    tmp.write(block)
    try:
        columns = ", ".join(f"'{k}': '{v}'" for k, v in columns_types.items())
        partial = target.with_suffix(".partial")
        with duckdb.connect() as duck:
            duck.execute("SET TimeZone = 'UTC'")
            duck.execute(
                f"COPY (SELECT * FROM read_csv('{csv_path}', header=false, "
                f"columns={{{columns}}}, delim=',', quote='\"', escape='\"', auto_detect=false)) "
                f"TO '{partial}' (FORMAT parquet)"
            )
        partial.rename(target)
    finally:
        csv_path.unlink(missing_ok=True)
    return target
