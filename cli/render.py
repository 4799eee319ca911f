"""Rendering for humans and machines: tables, problems (``file:line: message``), JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ledger.errors import Problem


def err(message: str) -> None:
    print(message, file=sys.stderr)


def problems(items: Sequence[Problem], limit: int = 50) -> None:
    """Print problems to stderr as ``file:line: [column] reason`` then the row, indented."""
    for p in items[:limit]:
        err(p.render())
        if p.raw:
            err(f"    {p.raw}")
    if len(items) > limit:
        err(f"... and {len(items) - limit} more (use --json for all)")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def emit_json(payload: Any) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2, default=_default))


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
