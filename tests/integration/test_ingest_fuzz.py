"""Fuzzed exports: nothing lost, nothing invented, no traceback.

A clean synthetic export is ingested into one ledger; the same export with half of its rows
mutated (stray bytes, shifted separators, unbalanced quotes, bare CRs, NULs, broken UTF-8,
doubtful values) into another, by the fast path and by the row-by-row path. Then:

- no exception escapes ``ingest_file``;
- every line of the file is accounted for: its event, or its quarantine entry with a reason;
- every row left intact gives the very facts (decision) the clean ingest gave for that line;
- only mutated lines are quarantined, and both paths quarantine the same lines.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.application import EVENTS_TABLE
from ledger.ingest import reader
from ledger.ingest.pipeline import IngestReport, ingest_file
from ledger.pseudonym import Pseudonymiser
from ledger.store import init_schema
from ledger.synth import generate
from ledger.vocabulary import PARIS
from ops.database import Connection

KEY = b"fuzz-key-0123456789abcdef"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=PARIS)
MUTATED_PER_FILE = 10_000
#: Values that look plausible and are not (or are, harmlessly).
ODD_VALUES = ["", " ", "abc", "-1", "-0", "9999-01-01 00:00", "01/01/1999 10:00",
              "\u0662\u0660\u0662\u0663", "E\ufeff1", "\u200bP-1", "=cmd|' /C calc'!A0",
              "30/02/2023", "x" * 300, "NONE", "void", "+", "1e3", "12,345", "SOS 75", "é"]
STRAY_BYTES = [b";", b",", b"x", b"0", b" ", b"\r", b"\x00", b"\xff", b"\xc3", b"\xe9", b"'"]


def _mutate(line: bytes, rng: random.Random, quote_allowed: bool,
            avoid: frozenset[str] = frozenset()) -> tuple[bytes, str]:
    """One mutation of a data line (without its line break), and its name."""
    fields = line.split(b";")
    kinds = ["cr", "nul", "drop_separator", "add_separator", "flip_byte", "truncate",
             "duplicate_field", "odd_value", "bad_utf8", "swap_fields", "spaces"]
    if quote_allowed:
        kinds.append("open_quote")
    kinds = [k for k in kinds if k not in avoid]
    kind = rng.choice(kinds)
    at = rng.randrange(len(line) + 1)
    i, j = rng.randrange(len(fields)), rng.randrange(len(fields))
    if kind == "cr":
        return line[:at] + b"\r" + line[at:], kind
    if kind == "nul":
        return line[:at] + b"\x00" + line[at:], kind
    if kind == "drop_separator" and b";" in line:
        cut = rng.choice([k for k, c in enumerate(line) if c == ord(";")])
        return line[:cut] + line[cut + 1:], kind
    if kind == "add_separator":
        return line[:at] + b";" + line[at:], kind
    if kind == "flip_byte" and line:
        k = rng.randrange(len(line))
        return line[:k] + rng.choice(STRAY_BYTES) + line[k + 1:], kind
    if kind == "truncate":  # never to nothing: a blank line is no row
        return line[:max(at, 1)], kind
    if kind == "duplicate_field":
        return b";".join([*fields[:i], fields[i], *fields[i:]]), kind
    if kind == "odd_value":
        fields[i] = rng.choice(ODD_VALUES).encode()
        return b";".join(fields), kind
    if kind == "bad_utf8":
        return line[:at] + b"\xff\xfe" + line[at:], kind
    if kind == "swap_fields":
        fields[i], fields[j] = fields[j], fields[i]
        return b";".join(fields), kind
    if kind == "spaces":
        fields[i] = b"  " + fields[i] + b" "
        return b";".join(fields), kind
    if kind == "open_quote":
        fields[i] = b'"' + fields[i]
        return b";".join(fields), kind
    return line + b";", "add_separator"


def fuzzed(source: Path, target: Path, seed: int, avoid: frozenset[str] = frozenset()
           ) -> set[int]:
    """Write ``source`` to ``target`` with every other data row mutated (on average); return
    the mutated lines. Quotes are opened at most once in any ``MAX_RECORD_LINES + 1`` lines, so
    that two never pair up into one record (a quoted field may span lines, by design). The
    mutations named in ``avoid`` are not made."""
    rng = random.Random(seed)
    lines = source.read_bytes().split(b"\n")
    out, mutated, last_quote = [lines[0]], set(), -100
    for number, line in enumerate(lines[1:], start=2):
        if not line or rng.random() >= 0.5:
            out.append(line)
            continue
        quote_allowed = number - last_quote > reader.MAX_RECORD_LINES + 1
        changed, kind = _mutate(line, rng, quote_allowed, avoid)
        if kind == "open_quote":
            last_quote = number
        out.append(changed.replace(b"\n", b""))
        mutated.add(number)
    target.write_bytes(b"\n".join(out))
    return mutated


@pytest.fixture
def ledgers(pg_admin_url: str) -> Iterator[list[Connection]]:
    from tests.conftest import _fresh_db

    made = [_fresh_db(pg_admin_url) for _ in range(3)]
    dbs = [next(m) for m in made]
    for db in dbs:
        init_schema(db, db.library_env())
    yield dbs
    for m in made:
        next(m, None)


def _by_line(conn: Any, sha256: str, field: str) -> dict[int, Any]:
    """The facts (or decision) of each event of one file, by the line it came from."""
    rows = conn.execute(
        f"SELECT (s->'provenance'->>'line')::int, s->%s FROM "
        f"(SELECT convert_from(state, 'UTF8')::jsonb AS s FROM {EVENTS_TABLE}) e "
        "WHERE s->'provenance'->>'file_sha256' = %s", (field, sha256)).fetchall()
    found: dict[int, Any] = {}
    for line, facts in rows:
        assert line not in found, f"two events from line {line}"
        found[line] = facts
    return found


def _ingest(db: Connection, path: Path, accelerate: bool = True) -> IngestReport:
    with db.connect() as conn:
        return ingest_file(conn, path, Pseudonymiser(KEY), now=NOW, accelerate=accelerate)


@pytest.mark.parametrize("kind", ["encounters", "decisions"])
def test_fuzzed_export_loses_nothing_and_invents_nothing(
        ledgers: list[Connection], tmp_path: Path, kind: str) -> None:
    data = generate(tmp_path / "synth", associations=3, start=date(2023, 1, 1),
                    end=date(2023, 12, 31), encounters=22_000, seed=17)
    clean = data.encounters_path if kind == "encounters" else data.decisions_path
    field = "facts" if kind == "encounters" else "decision"
    bad = tmp_path / f"fuzzed-{kind}.csv"
    mutated = fuzzed(clean, bad, seed=len(kind))
    assert len(mutated) >= MUTATED_PER_FILE
    if kind == "decisions":  # their encounters first, clean, in every ledger
        for db in ledgers:
            _ingest(db, data.encounters_path)

    reference, fast_db, slow_db = ledgers
    clean_report = _ingest(reference, clean)
    assert not clean_report.quarantined
    fast = _ingest(fast_db, bad)  # no exception: the assertion is that we get here
    slow = _ingest(slow_db, bad, accelerate=False)

    with reference.connect() as c:
        expected = _by_line(c, clean_report.sha256, field)
    lines = set(range(2, len(bad.read_bytes().split(b"\n")) + 1))
    for report, db in ((fast, fast_db), (slow, slow_db)):
        with db.connect() as c:
            got = _by_line(c, report.sha256, field)
        quarantined = {p.line for p in report.quarantined}
        assert all(p.reason for p in report.quarantined)
        assert quarantined <= mutated, sorted(quarantined - mutated)[:5]
        intact = lines - mutated - {len(lines) + 1}  # the file's last line is empty
        assert {n: got.get(n) for n in intact} == {n: expected[n] for n in intact}
        # Every mutated line is either quarantined or gave an event (a harmless mutation, a
        # repeat of another row's decision being the one exception: unchanged).
        unaccounted = mutated - quarantined - set(got)
        assert len(unaccounted) <= report.unchanged
    assert sorted(p.line for p in fast.quarantined) == sorted(p.line for p in slow.quarantined)
    assert [p.reason for p in fast.quarantined] == [p.reason for p in slow.quarantined]
