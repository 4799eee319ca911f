"""The ``claims`` command: thin commands composed from one module per group.

Only ``cli/`` prints. Exit codes: 0 success, 1 findings or rejected input (with a report),
2 usage errors.
"""

from __future__ import annotations

import os
import warnings
from typing import Annotated

import typer

from cli import audit_cmd, quarantine_cmd, render, rules_cmd, synth_cmd
from cli.compare_cmd import compare_cmd, replay_cmd
from cli.context import open_database, settings_from_env
from cli.demo_cmd import demo_cmd
from cli.explain_cmd import explain_cmd
from cli.ingest_cmd import ingest
from cli.reconcile_cmd import reconcile_cmd

# platformdirs warns when XDG_RUNTIME_DIR is unset (containers); it is not the user's concern.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

app = typer.Typer(
    name="claims",
    help="Event-sourced claims ledger: ingest billing exports, replay them under tariff rule "
    "sets, measure the SNP exclusion of SOS Médecins regulation, produce audit extracts.\n\n"
    "Database: CLAIMS_DATABASE_URL, or an embedded PostgreSQL under CLAIMS_HOME. "
    "Patient ids are pseudonymised with CLAIMS_PSEUDONYM_KEY.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals could hold patient data
    add_completion=False,
)


@app.command("init")
def init_cmd() -> None:
    """Create the ledger's database and tables (idempotent); starts the embedded server."""
    settings = settings_from_env()
    conn = open_database(settings)
    where = (settings.database_url and "CLAIMS_DATABASE_URL") or f"embedded, {settings.home}"
    typer.echo(f"ledger ready ({where})")
    del conn


@app.command("project")
def project_cmd(
    rebuild: Annotated[bool, typer.Option(help="Drop the projection and rebuild it from zero.")]
    = False,
) -> None:
    """Bring the facts projection up to date with the event log (or rebuild it)."""
    from projections import facts_table

    conn_info = open_database(settings_from_env())
    with conn_info.connect() as conn:
        start, end = (facts_table.rebuild(conn, conn_info.connect) if rebuild
                      else facts_table.catch_up(conn))
        left_out = facts_table.alarms(conn)
    typer.echo(f"projection {facts_table.NAME}: positions {start} → {end}")
    render.projection_alarms(left_out, limit=len(left_out))


@app.command("stop")
def stop_cmd() -> None:
    """Stop the embedded PostgreSQL server (it is otherwise left running for the next command).

    Open sessions of other `claims` commands are ended. Exit 1, with the reason, if the server
    is still running afterwards.
    """
    from ops.database import stop_embedded

    settings = settings_from_env()
    result = stop_embedded(settings.home)
    if not result.stopped:
        render.err(f"error: {result.message}")
        raise typer.Exit(1)
    typer.echo(result.message)


app.command("ingest")(ingest)
app.command("compare")(compare_cmd)
app.command("replay")(replay_cmd)
app.command("explain")(explain_cmd)
app.command("reconcile")(reconcile_cmd)
app.command("demo")(demo_cmd)
app.command("verify")(audit_cmd.verify)
app.add_typer(audit_cmd.app, name="audit")
app.command("synth")(synth_cmd.synth)
app.add_typer(rules_cmd.app, name="rules")
app.add_typer(quarantine_cmd.app, name="quarantine")



#: Every file and folder the CLI writes (caches, bundles, reports, credentials) is its user's
#: alone: they hold pseudonyms, doctors' numbers and amounts.
PRIVATE_UMASK = 0o077


def main() -> None:
    os.umask(PRIVATE_UMASK)
    try:
        app()
    except KeyboardInterrupt:
        render.err("interrupted: nothing was committed for the batch in progress")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
