"""Deliberately bad encounter rows, one per kind of error the ingest must quarantine.

A bad row is a plausible row with one defect. With ``n >= len(KINDS)`` bad rows every kind
occurs at least once; they are spread evenly through the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

#: Field positions in ``ENCOUNTER_COLUMNS`` (see ``ledger.synth.generator``).
ORIGIN, REGULATED, PERFORMED, PATIENT, RPPS, AMOUNT = 2, 3, 4, 6, 8, 12

KINDS = ("bad_date", "unknown_origin", "negative_amount", "missing_required", "malformed_rpps")


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
    if kind == "bad_date":
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


class BadRowPlan:
    """Which bad rows are due after how many good rows, and how many of each kind were made.

    Args:
        total: The number of good rows the file will hold.
        count: The number of bad rows to insert.
    """

    def __init__(self, total: int, count: int):
        self._positions = list(positions(total, count))
        self._done = 0
        self.made: dict[str, int] = {}
        self.next_at: float = self._positions[0] if count else math.inf

    def due(self, good: int) -> Iterator[str]:
        """The kinds of the bad rows due once ``good`` good rows are written (marked as made)."""
        while self._done < len(self._positions) and self._positions[self._done] <= good:
            kind = KINDS[self._done % len(KINDS)]
            self._done += 1
            self.made[kind] = self.made.get(kind, 0) + 1
            yield kind
        self.next_at = (self._positions[self._done] if self._done < len(self._positions)
                        else math.inf)
