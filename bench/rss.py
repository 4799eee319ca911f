"""Ingest one file in a fresh process and print its peak RSS (KiB) and time: ``URL FILE``."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from ops.database import Connection


def peak_kib() -> int:
    """This process's peak resident memory in KiB.

    Linux's ``ru_maxrss`` survives ``exec``: a child started by a large parent reports the
    parent's size. ``VmHWM`` belongs to the process's own address space, so it is read first.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    url, path = sys.argv[1], Path(sys.argv[2])
    started = time.perf_counter()
    with Connection(url).connect() as conn:
        report = ingest_file(conn, path, Pseudonymiser(b"bench-key-0123456789"))
    elapsed = time.perf_counter() - started
    print(f"{peak_kib()} {elapsed:.3f} {report.new_events}")
