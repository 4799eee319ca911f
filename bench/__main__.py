"""``make bench [SIZE=n]``: the ledger's speed against its baselines, measured in the same run.

Each figure is printed with its baseline and the ratio. Benchmarks, not tests: nothing here
fails on timing. A private embedded PostgreSQL is started in a temporary folder and stopped.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench import baselines
from bench.common import fresh, private_server, synth
from ledger.application import EVENTS_TABLE
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from projections import facts_table


def line(label: str, value: float, unit: str, base_label: str = "", base: float = 0.0) -> None:
    ratio = f"  ratio {value / base:6.2f}x" if base else ""
    against = f"  vs {base_label} {base:>10,.0f} {unit}" if base_label else ""
    print(f"{label:<34} {value:>10,.0f} {unit}{against}{ratio}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", type=int, default=200_000, help="encounters (default 200k)")
    parser.add_argument("--associations", type=int, default=16)
    parser.add_argument("--csv", type=Path, help="an existing encounters export instead of synth")
    parser.add_argument("--rss-sizes", default="100000,1000000",
                        help="two sizes for the peak-RSS comparison ('' to skip)")
    parser.add_argument("--save-sample", type=int, default=30_000,
                        help="encounters saved through the library's save (baseline)")
    parser.add_argument("--runner-sample", type=int, default=3_000,
                        help="events through the library's ProjectionRunner (baseline)")
    args = parser.parse_args()

    with private_server("claims-bench-") as (admin_url, work):
        run(admin_url, work, args)


def run(admin_url: str, work: Path, args: argparse.Namespace) -> None:
    print(f"# claims-ledger bench: {args.size:,} synthetic encounters, "
          f"{args.associations} associations", flush=True)
    started = time.perf_counter()
    csv_path = args.csv or synth(work / "data", args.size, args.associations).encounters_path
    print(f"synthetic export written in {time.perf_counter() - started:.1f} s "
          f"({csv_path.stat().st_size / 1e6:.0f} MB)", flush=True)

    ledger = fresh(admin_url, "bench_ledger")
    with ledger.connect() as conn:
        started = time.perf_counter()
        report = ingest_file(conn, csv_path, Pseudonymiser(b"bench-key-0123456789"))
        ingest_s = time.perf_counter() - started
    events = report.new_events
    ingest_rate = events / ingest_s
    copy_rows, copy_s = baselines.raw_copy(ledger)
    copy_rate = copy_rows / copy_s
    library = fresh(admin_url, "bench_library")
    saved, save_s = baselines.library_save(ledger, library, args.save_sample)
    save_rate = saved / save_s
    print("\n## ingest (parse, validate, pseudonymise, encode, COPY, hash chain)")
    print(f"{events:,} events in {ingest_s:.1f} s")
    line("ingest", ingest_rate, "events/s", "raw COPY of the same rows", copy_rate)
    line("ingest", ingest_rate, "events/s", "library save (300/save)", save_rate)

    print("\n## projection rebuild (set-based SQL, ranges of the log on two connections)")
    # The first reader of freshly copied rows sets their hint bits (and writes the pages again),
    # whoever it is. The rebuild is timed twice: as the first reader after the ingest, then on
    # the log settled by VACUUM, where the baselines read it too.
    timed = []
    for settle in (False, True):
        with ledger.connect() as conn:
            if settle:
                conn.execute(f"VACUUM {EVENTS_TABLE}")
            started = time.perf_counter()
            _, last = facts_table.rebuild(conn, ledger.connect)
            timed.append(time.perf_counter() - started)
    decoded, decode_s = baselines.library_select_decode(ledger)
    ran, run_s = baselines.library_projection_runner(ledger, args.runner_sample)
    print(f"{last:,} events in {timed[0]:.1f} s (first read after the ingest), "
          f"{timed[1]:.1f} s (log settled by VACUUM, as for the baselines)")
    line("rebuild, first read", last / timed[0], "events/s", "library select+decode",
         decoded / decode_s)
    line("rebuild, settled log", last / timed[1], "events/s", "library select+decode",
         decoded / decode_s)
    line("rebuild, settled log", last / timed[1], "events/s", "library ProjectionRunner",
         ran / run_s)

    if args.rss_sizes:
        print("\n## peak RSS of one ingest process (streaming: should not grow with size)")
        sizes = [int(s) for s in args.rss_sizes.split(",")]
        peaks = []
        for size in sizes:
            path = synth(work / f"rss{size}", size, args.associations).encounters_path
            target = fresh(admin_url, f"bench_rss_{size}")
            out = subprocess.run([sys.executable, "-m", "bench.rss", target.url, str(path)],
                                 check=True, capture_output=True, text=True).stdout.split()
            peak_kib, seconds, n = int(out[0]), float(out[1]), int(out[2])
            peaks.append(peak_kib)
            print(f"{size:>10,} encounters: peak RSS {peak_kib / 1024:7.1f} MiB, "
                  f"{n:,} events in {seconds:.1f} s ({n / seconds:,.0f} events/s)", flush=True)
        print(f"peak RSS ratio {sizes[-1]:,} / {sizes[0]:,}: {peaks[-1] / peaks[0]:.2f}x")


if __name__ == "__main__":
    main()
