"""``python -m bench.verify_cost [--size N]``: what checking the log before a result costs.

One synthetic year: its encounters are ingested and the whole log verified (``claims verify``:
``verify_chain``, its head recorded); then its decisions are ingested (one more file of about
``N`` events), and the check every result runs first (``audit.gate.check``: from the last full
verification to the head) is timed against a full verification of the whole log, in the same
run, with their ratio. A benchmark, not a test: nothing fails on timing.
"""

from __future__ import annotations

import argparse
import time

from audit.gate import check, record_verified
from audit.verify import verify_chain
from bench.common import fresh, private_server, synth
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ledger.seal import Sealer

KEY = b"bench-key-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_cost", description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000,
                        help="encounters (the decisions file holds about as many)")
    parser.add_argument("--associations", type=int, default=8)
    args = parser.parse_args()
    sealer = Sealer(KEY)
    with private_server("claims-verify-bench-") as (admin_url, work):
        data = synth(work / "data", args.size, args.associations, seed=11)
        ledger = fresh(admin_url, "bench_verify")
        with ledger.connect() as conn:
            first = ingest_file(conn, data.encounters_path, Pseudonymiser(KEY))
            started = time.perf_counter()
            report = verify_chain(conn, sealer=sealer)
            record_verified(conn, report, sealer)
            print(f"# {first.new_events:,} events ingested, verified in "
                  f"{time.perf_counter() - started:.2f} s (ok={report.ok}), head recorded",
                  flush=True)
            second = ingest_file(conn, data.decisions_path, Pseudonymiser(KEY),
                                 side_connect=ledger.connect)
            print(f"# then one ingest of {second.new_events:,} events", flush=True)
            started = time.perf_counter()
            gate = check(conn, sealer)
            since = time.perf_counter() - started
            started = time.perf_counter()
            full = verify_chain(conn, sealer=sealer)
            whole = time.perf_counter() - started
    print(f"check from the last verification  {gate.report.events_checked:>10,} events "
          f"{since:7.2f} s  (ok={gate.ok})")
    print(f"full verification (baseline)      {full.events_checked:>10,} events "
          f"{whole:7.2f} s  (ok={full.ok})")
    print(f"ratio                             {whole / since:>10.2f}x faster")


if __name__ == "__main__":
    main()
