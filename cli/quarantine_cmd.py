"""``claims quarantine``: the text of quarantined rows, for the key holder; or erase it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer

from cli import render
from cli.context import open_database, settings_from_env
from ledger import quarantine

app = typer.Typer(help="Quarantined rows' text: sealed outside the event log (it may hold a "
                       "patient identifier in any cell), shown to whoever may read the ledger's "
                       "batch keys, erasable for good.", no_args_is_help=True)


def _batches(conn: object, what: str) -> list[UUID]:
    path = Path(what)
    if path.is_file():
        with path.open("rb") as handle:
            return quarantine.batches_of(conn, hashlib.file_digest(handle, "sha256").hexdigest())
    try:
        return [UUID(what)]
    except ValueError:
        render.err(f"error: {what!r} is neither an export file nor a batch id")
        raise typer.Exit(2) from None


@app.command("show")
def show(
    what: Annotated[str, typer.Argument(help="The export file as it was ingested, or the "
                                             "import batch's id (in `claims ingest --json`).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print each quarantined row's text as it came (patient identifiers in clear: keep the
    output as you keep the exports), checked against the digest in the event log."""
    conn_info = open_database(settings_from_env())
    out = []
    with conn_info.connect() as conn:
        batches = _batches(conn, what)
        if not batches:
            render.err(f"error: nothing sealed for {what}: no row of it was quarantined, or "
                       "its batch's key was shredded")
            raise typer.Exit(1)
        try:
            for batch in batches:
                digests = quarantine.logged_digests(conn, batch)
                out += [(batch, row) for row in quarantine.show(conn, batch, digests)]
        except quarantine.QuarantineError as exc:
            render.err(f"error: {exc}")
            raise typer.Exit(1) from None
    if json_output:
        render.emit_json([{"batch_id": str(b), "line": r.line, "text": r.text,
                           "digest_ok": r.digest_ok} for b, r in out])
    else:
        for _, row in out:
            mark = "" if row.digest_ok else "  [digest mismatch with the event log]"
            typer.echo(f"{row.line}: {row.text}{mark}")
    if any(not r.digest_ok for _, r in out):
        raise typer.Exit(1)


@app.command("shred")
def shred(
    batch: Annotated[str, typer.Argument(help="The import batch's id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
) -> None:
    """Erase a batch's quarantined text for good (its key and sealed rows; the event log keeps
    the lines, reasons and digests). Needs the database owner's rights."""
    if not yes:
        render.err("error: shredding cannot be undone: add --yes")
        raise typer.Exit(2)
    conn_info = open_database(settings_from_env())
    with conn_info.connect() as conn:
        gone = quarantine.shred(conn, UUID(batch))
    typer.echo(f"batch {batch}: quarantined text erased" if gone
               else f"batch {batch}: nothing sealed (or already shredded)")
