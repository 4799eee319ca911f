"""Deliberately bad rows, one per kind of error the ingest must quarantine.

A bad row is a plausible row with one defect. With ``n >= len(kinds)`` bad rows every kind
occurs at least once; they are spread evenly through the file. Encounters get theirs as they are
written (``BadRowPlan``); the corrections and decisions files get theirs afterwards
(``insert_bad_rows``), each a copy of the good row before it with one defect.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

#: Field positions in ``ENCOUNTER_COLUMNS`` (see ``ledger.synth.generator``).
ORIGIN, REGULATED, PERFORMED, PATIENT, RPPS, AMOUNT = 2, 3, 4, 6, 8, 12

KINDS = ("bad_date", "unknown_origin", "negative_amount", "missing_required", "malformed_rpps")
#: A corrections row has the encounter's columns and ``status``.
STATUS = 14
CORRECTION_KINDS = (*KINDS, "unknown_status")
#: Field positions in a decisions row (see ``ledger.synth.generator``).
DECIDED, PAID, PAID_CODES = 2, 3, 4
DECISION_KINDS = ("bad_date", "negative_amount", "not_an_amount", "missing_required",
                  "malformed_code")


def positions(total: int, count: int) -> Iterator[int]:
    """After how many good rows each bad row goes: evenly spread, non-decreasing.

    Args:
        total: The number of good rows in the file.
        count: The number of bad rows.

    Yields:
        ``count`` positions between 0 and ``total``.
    """
    for k in range(count):
        yield min(total, int((k + 0.5) * total / count) + (1 if total else 0))


def corrupt(fields: list[str], kind: str) -> list[str]:
    """A copy of a good row's fields with one defect of the given kind.

    Args:
        fields: The good row, in ``ENCOUNTER_COLUMNS`` order.
        kind: One of ``KINDS``.

    Returns:
        The bad row's fields.
    """
    out = list(fields)
    if kind == "unknown_status":
        out[STATUS] = "deleted"
    elif kind == "bad_date":
        out[PERFORMED] = f"30/02/{fields[PERFORMED][6:10]} 25:61"
    elif kind == "unknown_origin":
        out[ORIGIN] = "SAMU"
    elif kind == "negative_amount":
        out[AMOUNT] = f"-{fields[AMOUNT]}"
    elif kind == "missing_required":
        out[PATIENT] = ""
    elif kind == "malformed_rpps":
        out[RPPS] = fields[RPPS][:10]
    else:
        raise ValueError(f"unknown bad-row kind {kind!r}; expected one of {', '.join(KINDS)}")
    return out


def corrupt_decision(fields: list[str], kind: str) -> list[str]:
    """A copy of a good decisions row with one defect of a kind in ``DECISION_KINDS``."""
    out = list(fields)
    if kind == "bad_date":
        out[DECIDED] = f"30/02/{fields[DECIDED][6:10]}"
    elif kind == "negative_amount":
        out[PAID] = f"-{fields[PAID]}"
    elif kind == "not_an_amount":
        out[PAID] = "abc"
    elif kind == "missing_required":
        out[DECIDED] = ""
    elif kind == "malformed_code":
        out[PAID_CODES] = "G+M D"
    else:
        raise ValueError(f"unknown bad-row kind {kind!r}; expected one of "
                         f"{', '.join(DECISION_KINDS)}")
    return out


def insert_bad_rows(path: Path, count: int, kinds: tuple[str, ...],
                    corrupt_row: Callable[[list[str], str], list[str]]) -> dict[str, int]:
    """Spread ``count`` bad rows through a written ``;``-separated file (streamed, replaced
    whole at the end), each a corrupted copy of the good row before it.

    Returns:
        How many bad rows of each kind were inserted (none in a file without data rows).
    """
    with path.open(encoding="utf-8") as f:
        total = sum(1 for _ in f) - 1
    if count <= 0 or total <= 0:
        return {}
    plan = BadRowPlan(total, count, kinds)
    temporary = path.with_name(path.name + ".tmp")
    with path.open(encoding="utf-8") as src, temporary.open("w", encoding="utf-8",
                                                           newline="\n") as out:
        out.write(next(src))
        for good, line in enumerate(src, start=1):
            out.write(line)
            for kind in plan.due(good):
                out.write(";".join(corrupt_row(line.rstrip("\n").split(";"), kind)) + "\n")
    os.replace(temporary, path)
    return plan.made


class BadRowPlan:
    """Which bad rows are due after how many good rows, and how many of each kind were made.

    Args:
        total: The number of good rows the file will hold.
        count: The number of bad rows to insert.
        kinds: The kinds of defect, taken in turn.
    """

    def __init__(self, total: int, count: int, kinds: tuple[str, ...] = KINDS):
        self._kinds = kinds
        self._positions = list(positions(total, count))
        self._done = 0
        self.made: dict[str, int] = {}
        self.next_at: float = self._positions[0] if count else math.inf

    def due(self, good: int) -> Iterator[str]:
        """The kinds of the bad rows due once ``good`` good rows are written (marked as made)."""
        while self._done < len(self._positions) and self._positions[self._done] <= good:
            kind = self._kinds[self._done % len(self._kinds)]
            self._done += 1
            self.made[kind] = self.made.get(kind, 0) + 1
            yield kind
        self.next_at = (self._positions[self._done] if self._done < len(self._positions)
                        else math.inf)
