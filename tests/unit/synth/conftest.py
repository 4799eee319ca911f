"""One synthetic run shared by the synth tests (a year, four associations, bad rows)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path

import pytest

from ledger.ingest.rows import ENCOUNTER_SCHEMA, RowParser
from ledger.synth import SynthResult, generate

TIME = "%d/%m/%Y %H:%M"


@dataclass(frozen=True)
class Run:
    """A run's result and its files read back (rows as dicts of text)."""

    result: SynthResult
    encounters: list[dict[str, str]]
    corrections: list[dict[str, str]]
    decisions: list[dict[str, str]]
    headers: dict[str, list[str]]

    @cached_property
    def problems(self) -> list[list[tuple[str | None, str]]]:
        """The ingest's problems with each encounter row (the real contract check)."""
        header = self.headers["encounters"]
        parse = RowParser(ENCOUNTER_SCHEMA, header)
        return [parse([r[h] for h in header])[1] for r in self.encounters]

    @cached_property
    def good(self) -> list[dict[str, str]]:
        """The encounter rows the ingest accepts."""
        return [r for r, p in zip(self.encounters, self.problems, strict=True) if not p]

    @cached_property
    def timed(self) -> list[tuple[dict[str, str], datetime, datetime | None]]:
        """Good rows with their performed and regulated times."""
        return [(r, datetime.strptime(r["performed_at"], TIME),
                 datetime.strptime(r["regulated_at"], TIME) if r["regulated_at"] else None)
                for r in self.good]


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=";")
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


@pytest.fixture(scope="package")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    result = generate(tmp_path_factory.mktemp("synth"), associations=4, start=date(2023, 1, 1),
                      end=date(2023, 12, 31), encounters=60_000, seed=7, bad_rows=10,
                      corrections=0.02, voids=0.005)
    headers = {}
    rows = {}
    for name, path in (("encounters", result.encounters_path),
                       ("corrections", result.corrections_path),
                       ("decisions", result.decisions_path)):
        headers[name], rows[name] = read(path)
    return Run(result, rows["encounters"], rows["corrections"], rows["decisions"], headers)
