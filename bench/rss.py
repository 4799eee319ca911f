"""Ingest one file in a fresh process and print its peak RSS (KiB) and time: ``URL FILE``."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection

if __name__ == "__main__":
    url, path = sys.argv[1], Path(sys.argv[2])
    started = time.perf_counter()
    with Connection(url).connect() as conn:
        report = ingest_file(conn, path, Pseudonymiser(b"bench-key-0123456789"))
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{peak} {elapsed:.3f} {report.new_events}")
