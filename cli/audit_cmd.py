"""``claims audit extract|digest`` and ``claims verify [BUNDLE]``: the audit trail.

``verify`` is a top-level command: ``cli.main`` registers it with ``app.command("verify")(verify)``
(or adds ``verify_app``'s commands). Exit codes: 0 OK, 1 findings (a broken chain, a failing
bundle, an extract refused), 2 usage errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli import render
from cli.compare_cmd import parse_period
from cli.context import open_database, sealer, settings_from_env
from ledger.errors import LedgerError

app = typer.Typer(help="Audit trail: dispute extracts and chain digests.", no_args_is_help=True)
verify_app = typer.Typer()

DEFAULT_RULES = ["historical", "parity"]


def read_refs(path: Path) -> list[str]:
    """Encounter references from a file: one per line (``#`` comments), or a CSV whose header
    has an ``encounter_ref`` column."""
    lines = [li.strip() for li in path.read_text(encoding="utf-8-sig").splitlines()]
    lines = [li for li in lines if li and not li.startswith("#")]
    if lines and "encounter_ref" in lines[0].lower():
        sep = ";" if lines[0].count(";") >= lines[0].count(",") else ","
        header = [h.strip().lower() for h in lines[0].split(sep)]
        col = header.index("encounter_ref")
        return [row.split(sep)[col].strip() for row in lines[1:] if len(row.split(sep)) > col]
    return lines


@app.command("extract")
def extract_cmd(
    association: Annotated[str, typer.Option("--association", help="Association code, "
                                                                   "e.g. SOS-75.")],
    date_from: Annotated[str, typer.Option("--from", help="First act date (YYYY-MM-DD).")],
    date_to: Annotated[str, typer.Option("--to", help="Last act date, included.")],
    out: Annotated[Path, typer.Option("--out", help="Bundle folder to create (or zip file).")],
    rules: Annotated[list[str] | None, typer.Option(
        "--rules", help="Rule set(s); the first is the base. Default: historical, parity.")]
    = None,
    encounters: Annotated[Path | None, typer.Option(
        "--encounters", help="Only these encounters: a file of references, one per line.")]
    = None,
    as_zip: Annotated[bool, typer.Option("--zip", help="Write a .zip instead of a folder.")]
    = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Write a verifiable audit extract of one association and period (for a dispute).

    The bundle holds every encounter's full event history with provenance, its explanation under
    each rule set, totals, proofs tying each event to the ledger's chain head, the rule sets,
    a PDF report and a README. It never contains another association's data.
    """
    start, end = parse_period(date_from, date_to)
    assert start is not None and end is not None  # both options are required
    refs = None
    if encounters is not None:
        try:
            refs = read_refs(encounters)
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--encounters") from None
    from audit.extract import extract

    settings = settings_from_env()
    conn_info = open_database(settings)
    try:
        with conn_info.connect() as conn:
            summary = extract(conn, association, start, end, rules or DEFAULT_RULES, out,
                              refs, actor=settings.actor, as_zip=as_zip,
                              sealer=sealer(settings))
    except LedgerError as exc:
        render.err(f"error: {exc}")
        raise typer.Exit(1) from None
    if json_output:
        render.emit_json(summary_json(summary))
        return
    typer.echo(f"audit extract written: {summary.path}")
    typer.echo(f"  {association}, {start} to {end}: {summary.encounters} encounters, "
               f"{summary.events} events, ledger position {summary.position}")
    typer.echo(f"  chain head {summary.chain_head}\n  merkle root {summary.merkle_root}\n")
    typer.echo(render.table(
        ["rule set", "encounters", "total", "difference"],
        [[t.name, t.encounters, t.total, t.difference] for t in summary.totals]))
    typer.echo(f"\ninsurer paid: {summary.insurer_paid:.2f}")
    if summary.missing_refs:
        render.err(f"warning: {len(summary.missing_refs)} requested encounters not found in "
                   f"{association} for the period: {', '.join(summary.missing_refs[:20])}")


def summary_json(summary: Any) -> dict[str, Any]:
    return {
        "path": str(summary.path), "association": summary.association,
        "from": summary.date_from.isoformat(), "to": summary.date_to.isoformat(),
        "position": summary.position, "chain_head": summary.chain_head,
        "merkle_root": summary.merkle_root, "encounters": summary.encounters,
        "events": summary.events, "insurer_paid": summary.insurer_paid,
        "totals": [{"rule_set": t.name, "content_hash": t.content_hash,
                    "encounters": t.encounters, "total": t.total, "difference": t.difference}
                   for t in summary.totals],
        "missing_refs": summary.missing_refs, "files": summary.files,
    }


@app.command("digest")
def digest_cmd(
    list_all: Annotated[bool, typer.Option("--list", help="List recorded digests instead.")]
    = False,
    note: Annotated[str | None, typer.Option(help="Why this digest is recorded.")] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record the chain head (position, link) as a digest to hand out, or list digests."""
    from audit.digest import list_digests, record_digest

    settings = settings_from_env()
    with open_database(settings).connect() as conn:
        digests = list_digests(conn) if list_all else [
            record_digest(conn, actor=settings.actor, note=note, sealer=sealer(settings))]
    rows: list[dict[str, Any]] = [
        {"position": d.position, "link": d.link, "recorded_at": d.recorded_at.isoformat(),
         "actor": d.actor, "merkle_root": d.merkle_root, "note": d.note,
         "signature": d.signature, "public_key": d.public_key} for d in digests]
    if json_output:
        render.emit_json(rows)
        return
    for r in rows:
        typer.echo(f"{r['recorded_at']}  position {r['position']}  link {r['link']}  "
                   f"{r['actor']}{'  ' + r['note'] if r['note'] else ''}")
        typer.echo(f"    signature {r['signature']}  key {r['public_key']}" if r["signature"]
                   else "    not signed (recorded without the ledger's key)")


@verify_app.command("verify")
def verify(
    bundle: Annotated[Path | None, typer.Argument(
        help="An audit bundle (folder or zip) to check offline. Without it: the ledger's "
             "hash chain in the database.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
    public_key: Annotated[str | None, typer.Option(
        "--public-key", help="With a bundle: the ledger's public key (64 hex digits), as the "
        "association publishes it (`claims audit key`); the bundle must be signed with it.")]
    = None,
) -> None:
    """Verify the ledger's hash chain, or an audit bundle offline; name the first failure."""
    if bundle is not None:
        _verify_bundle(bundle, json_output, _public_key(public_key))
    else:
        _verify_database(json_output)


def _public_key(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise typer.BadParameter("not 64 hexadecimal digits", param_hint="--public-key")
    return key


@app.command("key")
def key_cmd() -> None:
    """Print the ledger's public key (Ed25519, hex), which its audit bundles are signed with:
    publish it, so that anyone can check a bundle with `claims verify BUNDLE --public-key KEY`.
    Needs the ledger's key (CLAIMS_PSEUDONYM_KEY); the public key reveals nothing of it."""
    keyed = sealer(settings_from_env())
    if keyed is None:
        render.err("error: the public key is derived from the ledger's key: set "
                   "CLAIMS_PSEUDONYM_KEY")
        raise typer.Exit(2)
    typer.echo(keyed.public_key().hex())


def _verify_bundle(bundle: Path, json_output: bool, ledger_key: bytes | None) -> None:
    from audit.bundle_verify import verify_bundle

    problems = verify_bundle(bundle, ledger_key)
    if json_output:
        render.emit_json({"bundle": str(bundle), "ok": not problems,
                          "problems": [p._asdict() for p in problems]})
    elif problems:
        render.err(f"bundle {bundle} does NOT verify: {len(problems)} problem(s)")
        for p in problems[:50]:
            render.err(f"  {p.render()}")
    else:
        signer = ("the ledger's key given" if ledger_key is not None else
                  "the key it names: compare it with the ledger's published key, or pass "
                  "--public-key")
        typer.echo(f"bundle {bundle}: OK (every file, event, proof and total checks; signed "
                   f"with {signer})")
    if problems:
        raise typer.Exit(1)


def _verify_database(json_output: bool) -> None:
    from audit.gate import record_verified
    from audit.verify import verify_chain

    settings = settings_from_env()
    keyed = sealer(settings)
    with open_database(settings, init=False).connect() as conn:
        row = conn.execute("SELECT to_regclass('claims_chain')").fetchone()
        if row is None or row[0] is None:
            render.err("error: no ledger in this database yet (run `claims init`)")
            raise typer.Exit(1)
        report = verify_chain(conn, sealer=keyed)
        record_verified(conn, report, keyed)  # the checks before results start from it
        forged = _forged_digests(conn, keyed)
    brk = report.first_break
    if json_output:
        render.emit_json({
            "ok": report.ok, "events_checked": report.events_checked,
            "head_position": report.head_position, "head_link": report.head_link,
            "unchained": report.unchained, "unsealed": report.unsealed,
            "seals_checked": report.seals_checked, "seal_key": keyed is not None,
            "digests_checked": report.digests_checked, "forged_digests": forged,
            "first_break": brk._asdict() if brk else None})
    elif brk is not None:
        render.err(f"chain BROKEN at position {brk.position} ({brk.kind}): {brk.message}")
        render.err(f"  positions 1..{report.head_position} verify "
                   f"(last good link {report.head_link})")
    else:
        typer.echo(f"chain OK: {report.events_checked} events, head position "
                   f"{report.head_position}, link {report.head_link}, "
                   f"{report.digests_checked} digests checked, {report.seals_checked} seals "
                   "checked" + ("" if keyed else " (their positions only: set "
                                "CLAIMS_PSEUDONYM_KEY to check them under the ledger's key)"))
    if report.unchained and not json_output:
        first = report.head_position + 1
        render.err(f"ALARM: {report.unchained} event(s) at positions {first}-"
                   f"{report.head_position + report.unchained} have no chain link: written by "
                   "something other than the ledger. Writes refuse to go on until they are "
                   "reviewed (runbook: audit/docs.md, \"Unchained events\").")
    unsealed = report.unsealed - report.unchained
    if unsealed > 0 and not json_output:
        last = report.head_position
        render.err(f"ALARM: {unsealed} event(s) at positions {last - unsealed + 1}-{last} are "
                   "chained but not sealed with the ledger's key: written by something other "
                   "than the ledger. Writes refuse to go on until they are reviewed (runbook: "
                   "audit/docs.md, \"Unchained events\").")
    if forged and not json_output:
        render.err(f"ALARM: {len(forged)} recorded digest(s) (at positions "
                   f"{', '.join(map(str, forged))}) carry a signature that is not the ledger's: "
                   "recorded by something other than the ledger.")
    if not report.whole or forged:
        raise typer.Exit(1)


def _forged_digests(conn: Any, keyed: Any) -> list[int]:
    """The positions of the signed digests whose signature is not the ledger's (checked only
    with the ledger's key)."""
    from audit.digest import list_digests, signed_by

    if keyed is None:
        return []
    return [d.position for d in list_digests(conn)
            if d.signature and not signed_by(d, keyed.public_key())]


@app.command("adopt")
def adopt_cmd(
    through: Annotated[int, typer.Option(help="The last position to adopt: the log's last "
                                              "position, as `claims verify` named it.")],
) -> None:
    """Chain and seal events the ledger did not write, after reviewing them (runbook:
    audit/docs.md, "Unchained events"). Refused if the log's last position is not --through:
    more events came since the review. Needs the ledger's key (CLAIMS_PSEUDONYM_KEY)."""
    settings = settings_from_env()
    keyed = sealer(settings)
    if keyed is None:
        render.err("error: adopting events seals them with the ledger's key: set "
                   "CLAIMS_PSEUDONYM_KEY")
        raise typer.Exit(2)
    try:
        adopted = _adopt(open_database(settings), keyed, through)
    except LedgerError as exc:
        render.err(f"error: {exc}")
        raise typer.Exit(1) from None
    typer.echo(f"adopted positions {adopted + 1}-{through}: the chain covers the whole log "
               "again, sealed with the ledger's key")


def _adopt(conn_info: Any, keyed: Any, through: int) -> int:
    """Chain and seal the log through ``through``; returns the last position sealed before."""
    from ledger.store import EventWriter

    with conn_info.connect() as conn, conn.transaction():
        writer = EventWriter(conn, keyed, adopt_unchained=True)
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM claims_chain_seals"
                           ).fetchone()
        before = int(row[0]) if row else 0
        head = writer.lock()
        if head.position != through:
            render.err(f"error: the log's last position is {head.position}, not {through}: "
                       "review the events up to it, then run again with that position")
            raise typer.Exit(1)
        writer.finish()
    return before
