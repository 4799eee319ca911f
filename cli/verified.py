"""Results only from a verified log: the check ``compare``, ``replay`` and ``reconcile`` run first
(``audit.gate``), and its ``--unverified`` override."""

from __future__ import annotations

from typing import Any

import typer

from cli import render
from cli.context import sealer
from ledger.settings import Settings

#: The override's help, the same for every command that has it.
UNVERIFIED_HELP = ("Compute even if the chain does not verify since the last verified "
                   "position: the results are then not evidence.")


def require_verified(conn: Any, settings: Settings, unverified: bool) -> None:
    """Check the chain since the last verified position; exit 1 with the reason unless it
    holds (or ``unverified``: then warn and go on)."""
    from audit.gate import check

    gate = check(conn, sealer(settings))
    if gate.ok:
        return
    if unverified:
        render.err(f"WARNING: {gate.problem()}. Computed anyway (--unverified): these results "
                   "are not evidence.")
        return
    render.err(f"error: {gate.problem()}. Nothing was computed: results come only from a "
               "verified log. Run `claims verify` and follow the runbook (audit/docs.md, "
               "\"Unchained events\"), or pass --unverified to compute anyway.")
    raise typer.Exit(1)
