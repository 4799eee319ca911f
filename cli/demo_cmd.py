"""``claims demo``: the whole path on synthetic data, on the embedded PostgreSQL.

Generates a small synthetic export (a few associations, one year), ingests it with its
corrections and the insurer's decisions, and prints the cost of the SNP exclusion per
association: the payout under ``parity`` minus the payout under ``historical``. It runs in its
own database (``claims_demo``, recreated each time), never in the user's ledger.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from cli import render
from cli.compare_cmd import Format, publish_rules, show
from cli.context import database_errors, settings_from_env
from cli.ingest_cmd import ingest_paths, summary_line
from ledger import domain
from ledger.errors import ConfigurationError
from ledger.pseudonym import Pseudonymiser
from ledger.seal import Sealer
from ops.database import Connection, embedded_server, ensure_database, secure_embedded

DEMO_DB = "claims_demo"


def _fresh_demo_database(home: Path) -> Connection:
    import psycopg

    admin = secure_embedded(embedded_server(home), home)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DB}" WITH (FORCE)')
    return Connection(ensure_database(admin, DEMO_DB))


def demo_cmd(
    associations: Annotated[int, typer.Option(help="Number of synthetic associations.")] = 4,
    encounters: Annotated[int, typer.Option(help="Number of synthetic encounters.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic data.")] = 2023,
) -> None:
    """Run everything end to end on synthetic data and print the SNP exclusion cost."""
    from ledger.store import init_schema
    from ledger.synth import generate
    from projections.compare import compare
    from projections.rules.loader import load_rule_set
    from projections.snapshot import snapshot

    started = time.perf_counter()
    settings = settings_from_env(demo=True)
    try:
        key = settings.require_pseudonym_key()
    except ConfigurationError as exc:
        render.err(f"error: {exc}")
        raise typer.Exit(2) from None
    domain.current_actor.set(f"{settings.actor} (demo)")
    out = settings.home / "demo"
    typer.echo(f"1/4 synthetic exports → {out}  (DEMO data, demo pseudonymisation key)")
    result = generate(out, associations=associations, start=date(2023, 1, 1),
                      end=date(2023, 12, 31), encounters=encounters, seed=seed)
    files = [result.encounters_path, result.corrections_path, result.decisions_path]
    typer.echo("2/4 embedded PostgreSQL, fresh demo database")
    with database_errors(settings.home):
        conn_info = _fresh_demo_database(settings.home)
        init_schema(conn_info, conn_info.library_env())
    typer.echo("3/4 ingest")
    reports, failures = ingest_paths(conn_info, files, Pseudonymiser(key))
    for r in reports:
        typer.echo("    " + summary_line(r))
    render.problems(failures)
    typer.echo("4/4 compare historical vs parity (SNP eligibility extended to SOS regulation)\n")
    base, alt = load_rule_set("historical"), load_rule_set("parity")
    with conn_info.connect() as conn:
        publish_rules(conn, [base, alt], Sealer(key))
        parquet = snapshot(conn, settings.home / "cache" / "demo")
    cmp = compare(parquet, base, alt, ("association",))
    show(cmp, Format.table)
    t = cmp.totals
    typer.echo(f"\nThe SNP exclusion cost these {associations} associations {t['difference']} € "
               f"in 2023 ({t['encounters']} encounters). "
               f"Done in {time.perf_counter() - started:.1f} s.")
