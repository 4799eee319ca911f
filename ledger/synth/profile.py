"""Who and when: synthetic association profiles, the activity calendar and the sizing plan.

Everything here is small (one object per association, one weight per day); the rows themselves
are produced by ``ledger.synth.writer``. Sources and calibration are in ``docs.md``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import holidays

from ledger.vocabulary import PARIS

#: National activity: ≈ 3.7 M acts a year (2.6 M visits + 1.1 M consultations) over 64 associations.
NATIONAL_ACTS_PER_YEAR = 3_700_000
NATIONAL_ASSOCIATIONS = 64
#: SOS Médecins stopped working with the SAS on this day (Fréjus congress, June 2023).
SAS_STOP = date(2023, 7, 1)
#: Earliest supported day: G/VG at 25.00 € (the tariff table starts there).
EARLIEST = date(2017, 5, 1)

# Département numbers, large cities first (the first associations are the biggest places).
_DEPARTEMENTS = (
    "75", "13", "69", "33", "31", "44", "59", "67", "06", "34", "38", "83", "35", "76", "57",
    "54", "21", "25", "37", "87", "63", "29", "49", "51", "80", "45", "64", "66", "84", "17",
    "30", "42", "62", "68", "72", "86", "14", "18", "26", "2A", "2B", "01", "02", "03", "04",
    "05", "07", "08", "09", "10", "11", "12", "15", "16", "19", "22", "23", "24", "27", "28",
    "32", "36", "39", "40", "41", "43", "46", "47", "48", "50", "52", "53", "55", "56", "58",
    "60", "61", "65", "70", "71", "73", "74", "77", "78", "79", "81", "82", "85", "88", "89",
    "90", "91", "92", "93", "94", "95",
)
MAX_ASSOCIATIONS = len(_DEPARTEMENTS)

# Relative acts per hour of the day (index = hour), by kind of day: SOS works when surgeries
# are closed, so evenings, nights and weekends weigh more than in a GP surgery.
_WEEKDAY_HOURS = (3.0, 2.2, 1.6, 1.2, 1.0, 1.0, 1.4, 2.4, 4.0, 5.0, 5.2, 5.0,
                  4.4, 4.4, 4.8, 5.0, 5.4, 6.2, 7.2, 8.0, 8.4, 7.6, 6.0, 4.4)
_SATURDAY_HOURS = (3.4, 2.6, 1.8, 1.3, 1.1, 1.1, 1.5, 2.6, 4.4, 5.6, 6.0, 6.0,
                   5.6, 5.8, 6.4, 6.8, 7.0, 7.2, 7.6, 8.0, 8.2, 7.4, 6.0, 4.6)
_SUNDAY_HOURS = (4.0, 3.0, 2.0, 1.5, 1.2, 1.2, 1.6, 2.8, 5.2, 7.0, 7.6, 7.6,
                 7.0, 6.8, 7.2, 7.4, 7.6, 7.6, 7.8, 8.0, 8.0, 7.2, 6.0, 4.8)
# Relative acts per day: weekday 1, Saturday and Sunday/holiday heavier; winter epidemics.
_DAY_FACTOR = {"weekday": 1.0, "saturday": 1.35, "sunday": 1.7}
_MONTH_FACTOR = (1.25, 1.2, 1.05, 0.95, 0.9, 0.9, 0.85, 0.8, 0.95, 1.0, 1.1, 1.25)


def _cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    total = sum(weights)
    running, out = 0.0, []
    for w in weights:
        running += w / total
        out.append(running)
    out[-1] = 1.0
    return tuple(out)


#: Cumulative hour distributions by kind of day, for ``bisect`` on a uniform draw.
HOUR_CDF = {"weekday": _cumulative(_WEEKDAY_HOURS), "saturday": _cumulative(_SATURDAY_HOURS),
            "sunday": _cumulative(_SUNDAY_HOURS)}


@dataclass(frozen=True)
class AssociationProfile:
    """One synthetic SOS Médecins association and the parameters of its activity.

    Attributes:
        code: The association code, ``SOS-<département>``.
        doctors: The doctors' fake RPPS numbers (11 digits starting with ``1``).
        acts_per_year: Expected acts a year (the sizing weight).
        visit_share: Share of home visits among its acts.
        walk_in_share: Share of consultations without regulation (origin ``NONE``).
        c15_share: Share of regulated acts regulated by SAMU–Centre 15.
        sas_share: Share of regulated acts regulated by the SAS before 1 July 2023.
        sas_resumed: The day it resumed SAS work after 1 July 2023, or None if it never did.
    """

    code: str
    doctors: tuple[str, ...]
    acts_per_year: float
    visit_share: float
    walk_in_share: float
    c15_share: float
    sas_share: float
    sas_resumed: date | None

    @property
    def number(self) -> str:
        """The département part of the code (used in patient references)."""
        return self.code.removeprefix("SOS-")

    def sas_share_on(self, day: date) -> float:
        """The SAS share of regulated acts on a given day (0 after the stop unless resumed)."""
        if day < SAS_STOP:
            return self.sas_share
        if self.sas_resumed is not None and day >= self.sas_resumed:
            return self.sas_share / 2
        return 0.0


def make_profiles(count: int, seed: int) -> list[AssociationProfile]:
    """Deterministic association profiles: log-normal sizes of 10–50 doctors.

    Args:
        count: How many associations (at most ``MAX_ASSOCIATIONS``).
        seed: The random seed; the same seed gives the same profiles.

    Returns:
        The profiles, in département order (largest cities first).

    Raises:
        ValueError: If ``count`` is not between 1 and ``MAX_ASSOCIATIONS``.
    """
    if not 1 <= count <= MAX_ASSOCIATIONS:
        raise ValueError(f"associations must be between 1 and {MAX_ASSOCIATIONS}, not {count}")
    rng = random.Random(f"claims-synth-profiles:{seed}")
    per_doctor = NATIONAL_ACTS_PER_YEAR / NATIONAL_ASSOCIATIONS / 24.0  # ≈ 24 doctors on average
    used: set[str] = set()
    profiles = []
    for dept in _DEPARTEMENTS[:count]:
        doctors = min(50, max(10, round(rng.lognormvariate(math.log(22.0), 0.45))))
        rpps: list[str] = []
        while len(rpps) < doctors:
            number = f"1{rng.randrange(10**10):010d}"
            if number not in used:
                used.add(number)
                rpps.append(number)
        resumed = None
        if rng.random() < 0.1:
            resumed = date(2023, 10, 1) + timedelta(days=rng.randrange(640))
        profiles.append(AssociationProfile(
            code=f"SOS-{dept}", doctors=tuple(rpps),
            acts_per_year=doctors * per_doctor * rng.lognormvariate(0.0, 0.12),
            visit_share=rng.uniform(0.40, 0.65), walk_in_share=rng.uniform(0.30, 0.50),
            c15_share=rng.uniform(0.09, 0.15), sas_share=rng.uniform(0.02, 0.06),
            sas_resumed=resumed))
    return profiles


def day_kind(day: date, public_holidays: holidays.HolidayBase) -> str:
    """``sunday`` (Sundays and public holidays), ``saturday`` or ``weekday``."""
    if day.weekday() == 6 or day in public_holidays:
        return "sunday"
    return "saturday" if day.weekday() == 5 else "weekday"


def french_holidays(start: date, end: date) -> holidays.HolidayBase:
    """Metropolitan French public holidays covering ``start``–``end`` (and a margin)."""
    return holidays.France(years=range(start.year - 1, end.year + 2))


def day_weights(start: date, end: date, public_holidays: holidays.HolidayBase) -> list[float]:
    """Relative activity of each day from ``start`` to ``end`` inclusive."""
    weights = []
    day = start
    while day <= end:
        weights.append(_DAY_FACTOR[day_kind(day, public_holidays)]
                       * _MONTH_FACTOR[day.month - 1] * (1.1 if day.weekday() == 0 else 1.0))
        day += timedelta(days=1)
    return weights


def dst_days(start: date, end: date) -> frozenset[date]:
    """Days on which Paris changes its UTC offset (02:00–03:00 is skipped or repeated)."""
    out = set()
    day = start
    while day <= end:
        if (datetime(day.year, day.month, day.day, 0, tzinfo=PARIS).utcoffset()
                != datetime(day.year, day.month, day.day, 23, tzinfo=PARIS).utcoffset()):
            out.add(day)
        day += timedelta(days=1)
    return frozenset(out)


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainders).

    Args:
        total: The number to split.
        weights: Non-negative weights, not all zero.

    Returns:
        One integer per weight, summing exactly to ``total``.
    """
    scale = sum(weights)
    quotas = [total * w / scale for w in weights]
    counts = [int(q) for q in quotas]
    missing = total - sum(counts)
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - quotas[i], i))
    for i in order[:missing]:
        counts[i] += 1
    return counts


def plan_sizes(profiles: Sequence[AssociationProfile], start: date, end: date,
               encounters: int | None) -> list[int]:
    """How many encounters each association gets.

    Args:
        profiles: The associations.
        start: First day.
        end: Last day (inclusive).
        encounters: The total wanted, or None to size from the national profile.

    Returns:
        One count per association.
    """
    years = ((end - start).days + 1) / 365.25
    if encounters is None:
        return [round(p.acts_per_year * years) for p in profiles]
    return apportion(encounters, [p.acts_per_year for p in profiles])
