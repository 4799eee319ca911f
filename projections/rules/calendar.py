"""Calendar facts of an act on Paris local time: public holidays, Sundays, PDSA hours.

Both evaluators use these definitions: the interpreter calls ``moment``; the batch evaluator
compiles the same formulas (``batch``) and the same holiday list (``HOLIDAYS``).

PDSA hours (Code de la santé publique, art. R. 6315-1, as summarised on ameli.fr): every day
20:00–08:00; Sundays and public holidays 08:00–20:00 (so the whole day, nights included). The
regional Saturday-afternoon extension is the rule-set option ``saturday_afternoon_pdsa_from``
(``"12:00"`` or ``"14:00"``; null = base hours only). Bridge days (a Monday before or a Friday or
Saturday after a public holiday) are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import holidays

#: Years whose French (metropolitan, national) public holidays are known to the evaluators.
#: Outside them no day is a public holiday, in both evaluators alike.
HOLIDAY_YEARS = range(2015, 2031)

HOLIDAYS: dict[date, str] = dict(sorted(holidays.France(years=HOLIDAY_YEARS).items()))

NIGHT_START = 20 * 60  # minutes of the day
DAY_START = 8 * 60


def parse_hhmm(text: str) -> int:
    """Minutes of the day of ``"HH:MM"`` (``"24:00"`` allowed as the end of the day).

    Raises:
        ValueError: the text is not a time of day.
    """
    hours, sep, minutes = text.partition(":")
    if not (sep and len(hours) == 2 and len(minutes) == 2 and hours.isdigit()
            and minutes.isdigit()):
        raise ValueError(f"{text!r} is not HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(f"{text!r} is not a time of day between 00:00 and 24:00")
    return value


def hhmm(minutes: int) -> str:
    """``"HH:MM"`` of minutes of the day."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class Moment:
    """Where an act falls in the calendar (Paris wall-clock time)."""

    day: date
    minute: int  # minutes since local midnight (seconds dropped)
    isodow: int  # 1 = Monday … 7 = Sunday
    holiday: str | None
    saturday_afternoon: bool
    pdsa_hours: bool

    @property
    def sunday_or_holiday(self) -> bool:
        return self.isodow == 7 or self.holiday is not None

    def describe(self) -> str:
        """``Tuesday 2023-09-12 10:30`` (plus the holiday's name)."""
        text = f"{self.day:%A} {self.day.isoformat()} {hhmm(self.minute)}"
        return f"{text} ({self.holiday})" if self.holiday else text


def saturday_from(options: dict[str, Any]) -> int | None:
    """Minutes of the day when Saturday-afternoon PDSA starts, or None (option off)."""
    value = options.get("saturday_afternoon_pdsa_from")
    return None if value is None else parse_hhmm(value)


def moment(local: datetime, options: dict[str, Any]) -> Moment:
    """The calendar facts of an act.

    Args:
        local: the act's Paris wall-clock time (naive), ``EncounterFacts.performed_local``.
        options: the rule set's options (``saturday_afternoon_pdsa_from``).

    Returns:
        A ``Moment``.
    """
    day = local.date()
    minute = local.hour * 60 + local.minute
    isodow = day.isoweekday()
    holiday = HOLIDAYS.get(day)
    sat_from = saturday_from(options)
    saturday_afternoon = (sat_from is not None and isodow == 6 and holiday is None
                          and sat_from <= minute < NIGHT_START)
    pdsa_hours = (minute >= NIGHT_START or minute < DAY_START or isodow == 7
                  or holiday is not None or saturday_afternoon)
    return Moment(day, minute, isodow, holiday, saturday_afternoon, pdsa_hours)
