"""``make bench [SIZE=n]``: the ledger's speed against its baselines, measured in the same run.

Each figure is printed with its baseline and the ratio. The ingest, the rebuild and their
baselines are measured in ``--rounds`` rounds (each round pairs figures taken seconds apart);
the medians are printed, with the range of the rounds' ratios. Benchmarks, not tests: nothing
here fails on timing. A private embedded PostgreSQL is started in a temporary folder and stopped.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from bench import baselines
from bench.common import fresh, private_server, synth
from ledger.application import EVENTS_TABLE
from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection
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
    parser.add_argument("--rounds", type=int, default=3,
                        help="times the ingest, rebuild and their baselines are measured "
                             "(medians printed)")
    parser.add_argument("--runner-sample", type=int, default=3_000,
                        help="events through the library's ProjectionRunner (baseline)")
    args = parser.parse_args()

    with private_server("claims-bench-") as (admin_url, work):
        run(admin_url, work, args)


@dataclass
class Round:
    """One round's figures: the ledger's path and its baselines, measured one after the other."""

    ledger: Connection
    events: int  # written by the ingest
    ingest_s: float
    copy_rate: float  # events/s, as every rate here
    save_rate: float
    log: int  # events in the log, rebuilt
    rebuild_s: tuple[float, float]  # first read after the ingest, log settled by VACUUM
    decode_rate: float

    @property
    def ingest_rate(self) -> float:
        return self.events / self.ingest_s

    @property
    def rebuild_rates(self) -> tuple[float, float]:
        return self.log / self.rebuild_s[0], self.log / self.rebuild_s[1]


def measure_round(admin_url: str, csv_path: Path, save_sample: int) -> Round:
    """Ingest into a fresh ledger, then its baselines; rebuild twice, then the library's read.

    The first reader of freshly copied rows sets their hint bits (and writes the pages again),
    whoever it is: the rebuild is timed as that first reader, then on the log settled by VACUUM,
    where the library's read finds it too.
    """
    ledger = fresh(admin_url, "bench_ledger")
    with ledger.connect() as conn:
        started = time.perf_counter()
        report = ingest_file(conn, csv_path, Pseudonymiser(b"bench-key-0123456789"))
        ingest_s = time.perf_counter() - started
    copy_rows, copy_s = baselines.raw_copy(ledger)
    saved, save_s = baselines.library_save(ledger, fresh(admin_url, "bench_library"), save_sample)
    timed = []
    for settle in (False, True):
        with ledger.connect() as conn:
            if settle:
                conn.execute(f"VACUUM {EVENTS_TABLE}")
            started = time.perf_counter()
            _, logged = facts_table.rebuild(conn, ledger.connect)
            timed.append(time.perf_counter() - started)
    decoded, decode_s = baselines.library_select_decode(ledger)
    return Round(ledger, report.new_events, ingest_s, copy_rows / copy_s, saved / save_s, logged,
                 (timed[0], timed[1]), decoded / decode_s)


def summary(rounds: list[Round], label: str, value: Callable[[Round], float], base_label: str,
            base: Callable[[Round], float]) -> None:
    """The medians over the rounds, and the median of the rounds' own ratios with their range
    (each ratio pairs figures measured a few seconds apart, so a slower spell of the machine
    moves both sides)."""
    ratios = sorted(value(r) / base(r) for r in rounds)
    spread = f" (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)" if len(rounds) > 1 else ""
    print(f"{label:<34} {median(map(value, rounds)):>10,.0f} events/s  vs {base_label} "
          f"{median(map(base, rounds)):>10,.0f} events/s  median ratio {median(ratios):5.2f}x"
          f"{spread}", flush=True)


def run(admin_url: str, work: Path, args: argparse.Namespace) -> None:
    print(f"# claims-ledger bench: {args.size:,} synthetic encounters, "
          f"{args.associations} associations, {args.rounds} round(s)", flush=True)
    started = time.perf_counter()
    csv_path = args.csv or synth(work / "data", args.size, args.associations).encounters_path
    print(f"synthetic export written in {time.perf_counter() - started:.1f} s "
          f"({csv_path.stat().st_size / 1e6:.0f} MB)", flush=True)

    rounds = [measure_round(admin_url, csv_path, args.save_sample) for _ in range(args.rounds)]
    print("\n## ingest (parse, validate, pseudonymise, encode, COPY, hash chain)")
    for n, r in enumerate(rounds, 1):
        print(f"round {n}: {r.events:,} events in {r.ingest_s:.1f} s; "
              f"raw COPY {r.copy_rate:,.0f}, library save {r.save_rate:,.0f} events/s")
    summary(rounds, "ingest", lambda r: r.ingest_rate, "raw COPY of the same rows",
            lambda r: r.copy_rate)
    summary(rounds, "ingest", lambda r: r.ingest_rate, "library save (300/save)",
            lambda r: r.save_rate)

    print("\n## projection rebuild (set-based SQL, ranges of the log on two connections)")
    for n, r in enumerate(rounds, 1):
        print(f"round {n}: {r.log:,} events in {r.rebuild_s[0]:.1f} s (first read after the "
              f"ingest), {r.rebuild_s[1]:.1f} s (log settled by VACUUM, as for the baselines); "
              f"library select+decode {r.decode_rate:,.0f} events/s")
    summary(rounds, "rebuild, first read", lambda r: r.rebuild_rates[0],
            "library select+decode", lambda r: r.decode_rate)
    summary(rounds, "rebuild, settled log", lambda r: r.rebuild_rates[1],
            "library select+decode", lambda r: r.decode_rate)
    last = rounds[-1]
    ran, run_s = baselines.library_projection_runner(last.ledger, args.runner_sample)
    line("rebuild, settled log (last round)", last.rebuild_rates[1], "events/s",
         "library ProjectionRunner", ran / run_s)

    if args.rss_sizes:
        print("\n## peak RSS of one ingest process (streaming: should not grow with size), "
              "and its rate at each size")
        sizes = [int(s) for s in args.rss_sizes.split(",")]
        peaks = []
        for size in sizes:
            path = synth(work / f"rss{size}", size, args.associations).encounters_path
            target = fresh(admin_url, f"bench_rss_{size}")
            out = subprocess.run([sys.executable, "-m", "bench.rss", target.url, str(path)],
                                 check=True, capture_output=True, text=True).stdout.split()
            peak_kib, seconds, n = int(out[0]), float(out[1]), int(out[2])
            peaks.append(peak_kib)
            copy_rows, copy_s = baselines.raw_copy(target)
            print(f"{size:>10,} encounters: peak RSS {peak_kib / 1024:7.1f} MiB, "
                  f"{n:,} events in {seconds:.1f} s ({n / seconds:,.0f} events/s; raw COPY of "
                  f"the same rows {copy_rows / copy_s:,.0f}, ratio "
                  f"{n / seconds / (copy_rows / copy_s):.2f}x)", flush=True)
        print(f"peak RSS ratio {sizes[-1]:,} / {sizes[0]:,}: {peaks[-1] / peaks[0]:.2f}x")


if __name__ == "__main__":
    main()
