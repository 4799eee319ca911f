"""``generate``: write the three synthetic exports of a run and report what they hold."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ledger.synth.activity import AssociationWriter, Calendar, Counts
from ledger.synth.bad import (
    CORRECTION_KINDS,
    DECISION_KINDS,
    BadRowPlan,
    corrupt,
    corrupt_decision,
    insert_bad_rows,
)
from ledger.synth.profile import (
    EARLIEST,
    AssociationProfile,
    day_weights,
    dst_days,
    french_holidays,
    make_profiles,
    plan_sizes,
)

ENCOUNTER_COLUMNS = (
    "association", "encounter_ref", "regulation_origin", "regulated_at", "performed_at", "act",
    "patient_ref", "patient_birth_year", "doctor_rpps", "treating_doctor", "pdsa",
    "billed_codes", "billed_amount", "invoice_ref",
)
#: The corrections file adds ``status`` (``active`` or ``void``), an extra column the contract allows.
CORRECTION_COLUMNS = (*ENCOUNTER_COLUMNS, "status")
DECISION_COLUMNS = ("association", "encounter_ref", "decided_at", "paid_amount", "paid_codes",
                    "rejected_codes", "reason")
ENCOUNTERS_FILE, CORRECTIONS_FILE, DECISIONS_FILE = (
    "encounters.csv", "encounters_corrections.csv", "decisions.csv")
_PROGRESS_STEP = 10_000


@dataclass(frozen=True)
class SynthResult:
    """What a run wrote.

    Attributes:
        encounters_path: ``encounters.csv`` (good and bad rows).
        corrections_path: ``encounters_corrections.csv`` (later versions, with ``status``).
        decisions_path: ``decisions.csv`` (the insurer's decisions).
        rows: Data rows in ``encounters.csv`` (encounters plus bad rows).
        encounters: Good encounter rows.
        bad_rows: Deliberately bad rows, by kind.
        corrections: Rows of the corrections file with status ``active``.
        voids: Rows of the corrections file with status ``void``.
        decisions: Rows of ``decisions.csv``.
        rejections: Decisions rejecting at least one code.
        associations: The synthetic associations' profiles.
        bad_corrections: Deliberately bad rows in the corrections file, by kind.
        bad_decisions: Deliberately bad rows in ``decisions.csv``, by kind.
    """

    encounters_path: Path
    corrections_path: Path
    decisions_path: Path
    rows: int
    encounters: int
    bad_rows: dict[str, int]
    corrections: int
    voids: int
    decisions: int
    rejections: int
    associations: tuple[AssociationProfile, ...]
    bad_corrections: dict[str, int] = field(default_factory=dict)
    bad_decisions: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready summary (paths as strings, profiles without their doctors' numbers)."""
        return {
            "files": {"encounters": str(self.encounters_path),
                      "corrections": str(self.corrections_path),
                      "decisions": str(self.decisions_path)},
            "rows": self.rows, "encounters": self.encounters,
            "bad_rows": sum(self.bad_rows.values()), "bad_row_kinds": self.bad_rows,
            "corrections": self.corrections, "voids": self.voids,
            "decisions": self.decisions, "rejections": self.rejections,
            "bad_corrections": sum(self.bad_corrections.values()),
            "bad_decisions": sum(self.bad_decisions.values()),
            "associations": [{"code": a.code, "doctors": len(a.doctors),
                              "visit_share": round(a.visit_share, 3),
                              "sas_resumed": a.sas_resumed and a.sas_resumed.isoformat()}
                             for a in self.associations],
        }


def _check(associations: int, start: date, end: date, encounters: int | None, bad_rows: int,
           corrections: float, voids: float) -> None:
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    if start < EARLIEST:
        raise ValueError(f"start must be on or after {EARLIEST} (first G/VG tariff modelled)")
    if encounters is not None and encounters < 0:
        raise ValueError("encounters must not be negative")
    if bad_rows < 0:
        raise ValueError("bad_rows must not be negative")
    if not (0 <= corrections <= 1 and 0 <= voids <= 1 and corrections + voids <= 1):
        raise ValueError("corrections and voids are shares between 0 and 1 (sum at most 1)")
    del associations  # checked by make_profiles


def planned_rows(*, associations: int, start: date, end: date, encounters: int | None = None,
                 seed: int = 0, bad_rows: int = 0) -> int:
    """How many data rows ``generate`` will write to ``encounters.csv`` (for progress bars).

    Args:
        associations: Number of associations.
        start: First day of activity.
        end: Last day of activity (inclusive).
        encounters: Total good encounters, or None to size from the national profile.
        seed: The random seed.
        bad_rows: Deliberately bad rows to add.

    Returns:
        Good encounters plus bad rows.
    """
    profiles = make_profiles(associations, seed)
    return sum(plan_sizes(profiles, start, end, encounters)) + bad_rows


def generate(out_dir: Path, *, associations: int, start: date, end: date,
             encounters: int | None = None, seed: int = 0, bad_rows: int = 0,
             corrections: float = 0.01, voids: float = 0.002, bad_other_rows: int = 0,
             on_progress: Callable[[int], None] | None = None) -> SynthResult:
    """Write deterministic synthetic exports in the canonical format (streamed).

    Files: ``encounters.csv``, ``encounters_corrections.csv`` and ``decisions.csv`` in
    ``out_dir`` (created if needed), ``;``-separated UTF-8, ``DD/MM/YYYY HH:MM`` times and
    comma decimals. Association by association, day by day; memory does not grow with the
    number of rows. The same arguments give byte-identical files.

    Args:
        out_dir: Where to write the files (existing files are replaced).
        associations: Number of associations (``SOS-75``, ``SOS-13``, …).
        start: First day of activity.
        end: Last day of activity (inclusive).
        encounters: Total good encounters; None sizes from the national profile
            (≈ 3.7 M acts a year over 64 associations).
        seed: The random seed.
        bad_rows: Deliberately bad rows spread through ``encounters.csv`` (each kind at least
            once when 5 or more).
        corrections: Share of encounters with a corrected version in the corrections file.
        voids: Share of encounters voided in the corrections file.
        bad_other_rows: Deliberately bad rows spread through each of the corrections and the
            decisions files (after the good rows are written).
        on_progress: Called with the number of rows written to ``encounters.csv`` so far
            (every 10,000 rows or so, and at the end).

    Returns:
        The paths and counts of what was written.

    Raises:
        ValueError: If an argument is out of range.
    """
    _check(associations, start, end, encounters, bad_rows, corrections, voids)
    profiles = make_profiles(associations, seed)
    sizes = plan_sizes(profiles, start, end, encounters)
    public_holidays = french_holidays(start, end)
    calendar = Calendar.build(start, end, public_holidays, dst_days(start, end))
    weights = day_weights(start, end, public_holidays)
    bad = BadRowPlan(sum(sizes), bad_rows)
    counts = Counts()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / ENCOUNTERS_FILE, out_dir / CORRECTIONS_FILE, out_dir / DECISIONS_FILE)
    reported = [0]

    def progress() -> None:
        done = counts.good + sum(bad.made.values())
        if on_progress is not None and done - reported[0] >= _PROGRESS_STEP:
            reported[0] = done
            on_progress(done)

    def opened(path: Path, columns: tuple[str, ...]) -> Any:
        f = path.open("w", encoding="utf-8", newline="\n", buffering=1 << 20)
        f.write(";".join(columns) + "\n")
        return f

    with (opened(paths[0], ENCOUNTER_COLUMNS) as enc,
          opened(paths[1], CORRECTION_COLUMNS) as corr,
          opened(paths[2], DECISION_COLUMNS) as dec):
        for profile, size in zip(profiles, sizes, strict=True):
            writer = AssociationWriter(profile, calendar, seed, corrections, voids, bad)
            writer.write(size, weights, enc, corr, dec, counts, progress)
        if not math.isinf(bad.next_at):  # no good row to follow: bad rows at the end
            enc.writelines(_template_bad_rows(bad, profiles[0], start, counts.good))
    if bad_other_rows < 0:
        raise ValueError("bad_other_rows must not be negative")
    bad_corrections = insert_bad_rows(paths[1], bad_other_rows, CORRECTION_KINDS, corrupt)
    bad_decisions = insert_bad_rows(paths[2], bad_other_rows, DECISION_KINDS, corrupt_decision)
    made = sum(bad.made.values())
    if on_progress is not None:
        on_progress(counts.good + made)
    return SynthResult(
        encounters_path=paths[0], corrections_path=paths[1], decisions_path=paths[2],
        rows=counts.good + made, encounters=counts.good, bad_rows=dict(bad.made),
        corrections=counts.corrections, voids=counts.voids, decisions=counts.decisions,
        rejections=counts.rejections, associations=tuple(profiles),
        bad_corrections=bad_corrections, bad_decisions=bad_decisions)


def _template_bad_rows(bad: BadRowPlan, profile: AssociationProfile, day: date, good: int
                       ) -> list[str]:
    """Bad rows left over when no good row follows their position (e.g. no encounters)."""
    template = [profile.code, "", "SOS", f"{day:%d/%m/%Y} 21:05", f"{day:%d/%m/%Y} 22:10",
                "visit", f"P-{profile.number}-1", "", profile.doctors[0], "0", "1", "VG+VRN",
                "71,00", ""]
    out = []
    for i, kind in enumerate(bad.due(good)):
        row = corrupt(template, kind)
        row[1] = f"E-BAD-{i + 1:07d}"
        out.append(";".join(row) + "\n")
    return out
