"""The hot loop: one association's encounters, day by day, with their corrections and decisions.

Rows are written as they are made (one day of text at a time), so memory does not grow with the
number of rows. All text that repeats (dates, times, amounts) is formatted once and reused.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TextIO

import holidays

from ledger.synth import tariffs
from ledger.synth.bad import BadRowPlan, corrupt
from ledger.synth.profile import HOUR_CDF, AssociationProfile, apportion, day_kind
from ledger.synth.tariffs import amount_text, billed_codes

#: Days of margin before ``start`` (regulation up to 72 h earlier) and after ``end`` (decisions).
BEFORE, AFTER = 4, 32
_SNP_WINDOW = tariffs.SNP_WINDOW
_HHMM = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(1440))
# Patient ages (quantiles): SOS sees many children and many elderly people at home.
_AGES = tuple(min(99, int(a)) for a in (
    [i * 15 / 250 for i in range(250)] + [15 + i * 50 / 500 for i in range(500)]
    + [65 + i * 35 / 250 for i in range(250)]))
REJECT_REASONS = ("RSP-102 acte non remboursable", "RSP-215 cumul de majorations non autorisé",
                  "RSP-318 condition de majoration non remplie", "RSP-427 droits du patient")
SNP_REJECT = "RSP-471 SNP: régulation non éligible (SAS ou Centre 15 requis)"


@dataclass
class Counts:
    """Running totals of what was written."""

    good: int = 0
    corrections: int = 0
    voids: int = 0
    decisions: int = 0
    rejections: int = 0


@dataclass(frozen=True)
class Calendar:
    """Per-day text and facts for ``start - BEFORE`` … ``end + AFTER`` (index 0 = first day)."""

    start: date
    days: tuple[str, ...]
    years: tuple[str, ...]
    kinds: tuple[str, ...]
    periods: tuple[int, ...]
    dst: frozenset[int]

    @classmethod
    def build(cls, start: date, end: date, public_holidays: holidays.HolidayBase,
              dst: frozenset[date]) -> Calendar:
        """The calendar of a generation run."""
        first = start - timedelta(days=BEFORE)
        span = [first + timedelta(days=i) for i in range((end - first).days + AFTER + 1)]
        return cls(start=start, days=tuple(f"{d:%d/%m/%Y}" for d in span),
                   years=tuple(str(d.year) for d in span),
                   kinds=tuple(day_kind(d, public_holidays) for d in span),
                   periods=tuple(tariffs.base_period(max(d, tariffs.BASE_TARIFF[-1][0]))
                                 for d in span),
                   dst=frozenset(i for i, d in enumerate(span) if d in dst))

    def at(self, minute: int) -> str:
        """Export text of an absolute minute; DST-changing 02:xx hours move back to 01:xx."""
        day, m = divmod(minute, 1440)
        if 120 <= m < 180 and day in self.dst:
            m -= 60
        return f"{self.days[day]} {_HHMM[m]}"


def _delay(rnd: Callable[[], float]) -> int:
    """Minutes from regulation to act: mostly 15 min–4 h, a tail to 48 h and a few to 72 h."""
    u = rnd()
    if u < 0.90:
        return int(15 * 16 ** rnd())
    if u < 0.97:
        return int(240 * 12 ** rnd())
    return 2880 + int(1440 * rnd())


class AssociationWriter:
    """Writes one association's encounters, corrections and decisions.

    Args:
        profile: The association.
        calendar: The run's calendar.
        seed: The run's seed (each association draws from its own seeded generator).
        corrections: Share of encounters corrected later.
        voids: Share of encounters voided later.
        bad: The run's bad-row plan (bad rows go among the good ones when due).
    """

    def __init__(self, profile: AssociationProfile, calendar: Calendar, seed: int,
                 corrections: float, voids: float, bad: BadRowPlan):
        self.p = profile
        self.cal = calendar
        self.rng = random.Random(f"claims-synth:{seed}:{profile.code}")
        self.corrections = corrections
        self.voids = voids
        self.bad = bad
        self.seq = 0
        weights = [self.rng.lognormvariate(0.0, 0.5) for _ in profile.doctors]
        self.pick = tuple(i for i, w in enumerate(weights) for _ in range(1 + int(w * 8)))

    def day_counts(self, weights: list[float], total: int) -> list[int]:
        """Encounters per day: the calendar weights with this association's daily noise."""
        noisy = [w * self.rng.lognormvariate(0.0, 0.15) for w in weights]
        return apportion(total, noisy)

    def write(self, total: int, weights: list[float], enc: TextIO, corr: TextIO, dec: TextIO,
              counts: Counts, progress: Callable[[], None]) -> None:
        """Write ``total`` encounters spread over the days of ``weights``."""
        for day, count in enumerate(self.day_counts(weights, total)):
            if count:
                self._day(day + BEFORE, count, enc, corr, dec, counts)
                progress()

    def _day(self, idx: int, count: int, enc: TextIO, corr: TextIO, dec: TextIO,
             counts: Counts) -> None:
        p, cal, rnd = self.p, self.cal, self.rng.random
        kind = cal.kinds[idx]
        sunday = kind == "sunday"
        cdf = HOUR_CDF[kind]
        minutes = [bisect(cdf, rnd()) * 60 + int(rnd() * 60) for _ in range(count)]
        if idx in cal.dst:
            minutes = [m + 60 if 120 <= m < 180 else m for m in minutes]
        minutes.sort()
        day_text, year, period = cal.days[idx], cal.years[idx], cal.periods[idx]
        snp_open = cal.start + timedelta(days=idx - BEFORE) >= tariffs.SNP_START
        c15 = p.c15_share
        sas = c15 + p.sas_share_on(cal.start + timedelta(days=idx - BEFORE))
        pool = max(200, int(p.acts_per_year * 0.6))
        doctors, pick, npick = p.doctors, self.pick, len(self.pick)
        code, num, base = p.code, p.number, idx * 1440
        visit_share, walk_in, voids = p.visit_share, p.walk_in_share, self.voids
        corrected, born, days, bad = voids + self.corrections, cal.start.year, cal.days, self.bad
        lines, clines, dlines = [], [], []
        for m in minutes:
            visit = rnd() < visit_share
            if not visit and rnd() < walk_in:
                origin, delay, regulated = "NONE", 0, ""
            else:
                r = rnd()
                origin = "C15" if r < c15 else "SAS" if r < sas else "SOS"
                delay = _delay(rnd)
                regulated = cal.at(base + m - delay)
            treating = rnd() < 0.05
            pdsa_hours = tariffs.in_pdsa_hours(m, sunday)
            pdsa = origin != "NONE" and pdsa_hours and rnd() < 0.92
            snp = (snp_open and origin != "NONE" and not pdsa_hours and not treating
                   and delay <= _SNP_WINDOW and (origin != "SOS" or rnd() < 0.004))
            codes = billed_codes(visit, pdsa, m, sunday, snp)
            amount = amount_text(codes, period)
            self.seq += 1
            ref = f"E-{year}-{self.seq:07d}"
            patient = int(rnd() * pool) + 1
            birth = str(born - _AGES[(patient * 2654435761 >> 8) % 1000]) if rnd() < 0.6 else ""
            invoice = f"F{num}-{self.seq:07d}" if rnd() < 0.9 else ""
            fields = [code, ref, origin, regulated, f"{day_text} {_HHMM[m]}",
                      "visit" if visit else "consultation", f"P-{num}-{patient}", birth,
                      doctors[pick[int(rnd() * npick)]], "1" if treating else "0",
                      "1" if pdsa else "0", codes, amount, invoice]
            lines.append(";".join(fields))
            counts.good += 1
            u = rnd()
            if u < voids:
                clines.append(";".join(fields) + ";void")
                counts.voids += 1
            elif u < corrected:
                row = self._corrected(fields, base + m - delay, period)
                clines.append(";".join(row) + ";active")
                counts.corrections += 1
            if rnd() < 0.97:
                counts.decisions += 1
                decided = days[idx + 5 + int(rnd() * 26)]
                if (snp and origin == "SOS") or rnd() < 0.01:
                    counts.rejections += 1
                    dlines.append(self._rejection(fields, decided, period))
                else:
                    dlines.append(f"{code};{ref};{decided};{amount};{codes};;")
            if counts.good >= bad.next_at:
                lines.extend(self._bad_rows(fields, year, counts.good))
        enc.write("\n".join(lines) + "\n")
        if clines:
            corr.write("\n".join(clines) + "\n")
        if dlines:
            dec.write("\n".join(dlines) + "\n")

    def _bad_rows(self, fields: list[str], year: str, good: int) -> list[str]:
        """The bad rows due now, each a copy of ``fields`` with one defect and its own ref."""
        out = []
        for kind in self.bad.due(good):
            self.seq += 1
            row = corrupt(fields, kind)
            row[1] = f"E-{year}-{self.seq:07d}"
            row[13] = f"F{self.p.number}-{self.seq:07d}"
            out.append(";".join(row))
        return out

    def _corrected(self, fields: list[str], regulated_at: int, period: int) -> list[str]:
        """A later version of a row: earlier regulation time, a code withdrawn, or the birth year."""
        out = list(fields)
        rnd = self.rng.random
        codes = fields[11].split("+")
        if fields[3] and rnd() < 0.5:
            out[3] = self.cal.at(regulated_at - 5 - int(rnd() * 115))
        elif len(codes) > 1:
            out[11] = "+".join(codes[:-1])
            out[12] = amount_text(out[11], period)
        else:
            out[7] = str(int(fields[7] or self.cal.start.year - 40) - 1)
        return out

    def _rejection(self, fields: list[str], decided: str, period: int) -> str:
        """A decision rejecting codes: the SNP of an SOS-regulated act, or a random refusal."""
        association, ref, origin, codes = fields[0], fields[1], fields[2], fields[11]
        if origin == "SOS" and codes.endswith("+SNP"):
            paid_codes = codes.removesuffix("+SNP")
            return (f"{association};{ref};{decided};{amount_text(paid_codes, period)};"
                    f"{paid_codes};SNP;{SNP_REJECT}")
        reason = REJECT_REASONS[int(self.rng.random() * len(REJECT_REASONS))]
        head, _, last = codes.rpartition("+")
        if head:
            return (f"{association};{ref};{decided};{amount_text(head, period)};"
                    f"{head};{last};{reason}")
        return f"{association};{ref};{decided};0,00;;{codes};{reason}"
