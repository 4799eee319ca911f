"""``python -m bench.chain_cost [--size N]``: what the audit trail costs.

Prints, for one synthetic export: ingest with the hash chain and with the chain's hashing
replaced by a no-op (same rows written) and their ratio; ``verify_chain`` throughput with the
state hashed by PostgreSQL and by the client; the time of one audit extract (one association,
one month) including its full-log Merkle pass. A benchmark, not a test: nothing fails on timing.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from bench.common import fresh, private_server, synth
from ledger import store
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ledger.seal import Sealer
from ops.database import Connection

KEY = Pseudonymiser(b"bench-key-0123456789")


def timed_ingest(conn_info: Connection, csv: Path) -> tuple[int, float]:
    with conn_info.connect() as conn:
        started = time.perf_counter()
        report = ingest_file(conn, csv, KEY)
        return report.new_events, time.perf_counter() - started


def run(admin_url: str, work: Path, size: int, associations: int) -> None:
    from audit.extract import extract
    from audit.verify import verify_chain

    data = synth(work / "data", size, associations, seed=7)
    csv = data.encounters_path
    association = data.associations[0].code
    print(f"# chain cost: {size:,} encounters, {associations} associations", flush=True)
    chained = fresh(admin_url, "bench_chain")
    events, with_chain = timed_ingest(chained, csv)
    store.EventWriter.hash_links = False
    try:
        _, without_chain = timed_ingest(fresh(admin_url, "bench_nochain"), csv)
    finally:
        store.EventWriter.hash_links = True
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
        summary = extract(conn, association, date(2023, 3, 1), date(2023, 3, 31),
                          ["historical", "parity"], work / "bundle", actor="bench",
                          sealer=Sealer(KEY.key))
        seconds = time.perf_counter() - started
    print(f"extract {association} March: {summary.encounters:,} encounters, {summary.events:,} events, "
          f"log of {summary.position:,} events in {seconds:.2f} s")
    from audit.bundle_verify import verify_bundle

    started = time.perf_counter()
    problems = verify_bundle(summary.path)
    print(f"verify_bundle: {len(problems)} problems in {time.perf_counter() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chain_cost", description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--associations", type=int, default=8)
    args = parser.parse_args()
    with private_server("claims-chain-bench-") as (admin_url, work):
        run(admin_url, work, args.size, args.associations)


if __name__ == "__main__":
    main()
