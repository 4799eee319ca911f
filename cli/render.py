"""Rendering for humans and machines: tables, problems (``file:line: message``), JSON, CSV.

Every CSV the CLI writes goes through ``write_csv``, whose cells are ``csv_cell``: safe to open
in a spreadsheet (no formula injection).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from ledger.errors import Problem


def err(message: str) -> None:
    print(message, file=sys.stderr)


def problems(items: Sequence[Problem], limit: int = 50) -> None:
    """Print problems to stderr as ``file:line: [column] reason`` (a quarantined row's text is
    never printed: ``claims quarantine show`` reads it back for the key holder)."""
    for p in items[:limit]:
        err(p.render())
    if len(items) > limit:
        err(f"... and {len(items) - limit} more (use --json for all)")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def emit_json(payload: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2, default=_default),
          file=sys.stdout if stream is None else stream)


#: What a spreadsheet may take for the start of a formula (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A plain decimal number ("-25.00", "3"): a cell like this is a value, never a formula.
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def csv_cell(value: Any) -> str:
    """One CSV cell as text, safe to open in a spreadsheet.

    Money (``Decimal``) has two decimals, dates are ISO, None is empty. A text that starts like
    a formula (``=``, ``+``, ``-``, ``@``, tab, CR) gets a leading single quote, so Excel or
    LibreOffice shows it instead of evaluating it (OWASP's advice); a plain decimal number such
    as ``-25.00`` is left as it is.
    """
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = f"{value:.2f}"
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_csv(stream: TextIO, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A ``;``-separated CSV with a header row, every cell through ``csv_cell``."""
    writer = csv.writer(stream, delimiter=";")
    writer.writerow([csv_cell(h) for h in headers])
    writer.writerows([csv_cell(v) for v in row] for row in rows)


@contextmanager
def destination(out: Path | None) -> Iterator[TextIO]:
    """Standard output, or the file ``out`` (UTF-8, written whole; said on stderr)."""
    if out is None:
        yield sys.stdout
        return
    with out.open("w", encoding="utf-8", newline="") as handle:
        yield handle
    err(f"wrote {out}")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(_is_num(r[i]) for r in rows) if rows else False for i in range(len(headers))]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w)
                         for v, w, n in zip(values, widths, numeric, strict=True)).rstrip()

    lines = [fmt(list(headers)), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:,.2f}".replace(",", " ")
    return str(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def projection_alarms(found: Sequence[tuple[int, str]], limit: int = 5) -> None:
    """Warn on stderr of events the facts projection left out (results do not count them)."""
    if not found:
        return
    err(f"warning: {len(found)} event(s) of the log could not be projected and are left out "
        "of every result (a malformed event, written by something other than the ledger?):")
    for position, reason in found[:limit]:
        err(f"    position {position}: {reason}")
    if len(found) > limit:
        err(f"    ... and {len(found) - limit} more (`claims project` lists them all)")
