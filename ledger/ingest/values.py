"""Parsing the values of export cells: French dates and decimals, codes, flags, RPPS numbers.

Every parser raises ``ValueError`` with a message meant for the person who fixes the file; the
row models turn those into problems with file, line and column. A message never quotes the cell:
in a shifted row any cell may hold a patient identifier (the row's text is sealed, see
``ledger.quarantine``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import NamedTuple

from ledger.vocabulary import PARIS

# Digits are ASCII only (re.ASCII): other scripts' digits are refused, not read as numbers.
_DT = re.compile(
    r"^\s*(?:(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})|(?P<d2>\d{2})/(?P<m2>\d{2})/(?P<y2>\d{4}))"
    r"[T ](?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?\s*$", re.ASCII
)
_DATE = re.compile(
    r"^\s*(?:(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})|(?P<d2>\d{2})/(?P<m2>\d{2})/(?P<y2>\d{4}))\s*$",
    re.ASCII,
)
_MONEY = re.compile(r"^-?\d{1,9}(?:[.,]\d{1,2})?$", re.ASCII)
_CODE = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")
_RPPS = re.compile(r"^\d{11}$", re.ASCII)
_YEAR = re.compile(r"^\d{4}$", re.ASCII)
_ASSOCIATION = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
CENT = Decimal("0.01")
#: The years a date or time of an export may fall in (a birth year has its own range).
FIRST_YEAR, LAST_YEAR = 2000, 2099
#: Invisible format characters (soft hyphen, zero-width spaces and joiners, direction marks, the
#: BOM): refused inside a text cell, where they would make two equal-looking values differ.
INVISIBLE_RANGES = ((0x00AD, 0x00AD), (0x061C, 0x061C), (0x180E, 0x180E), (0x200B, 0x200F),
                    (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF))
_INVISIBLE = re.compile("[" + "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in INVISIBLE_RANGES)
                        + "]")


@lru_cache(maxsize=1 << 17)
def _paris_offset(y: int, mo: int, d: int, h: int) -> timezone | str:
    """Paris's UTC offset during a wall-clock hour, or why there is none (DST gap or overlap).

    Paris changes its offset on the hour (02:00-03:00 is skipped in March and repeated in
    October), so the hour decides; cached, because this is the costly part of parsing a time.
    """
    naive = datetime(y, mo, d, h, 30)
    early = naive.replace(tzinfo=PARIS, fold=0)
    late = naive.replace(tzinfo=PARIS, fold=1)
    offset = early.utcoffset()
    if offset != late.utcoffset():
        if early.astimezone(UTC).astimezone(PARIS).replace(tzinfo=None) != naive:
            return "does not exist in Paris time (DST gap)"
        return "is ambiguous in Paris time (DST change): add an offset"
    assert offset is not None
    return _fixed(offset)


@lru_cache(maxsize=64)
def _fixed(offset: timedelta) -> timezone:
    return timezone(offset)


def _in_years(text: str, year: str) -> None:
    if not FIRST_YEAR <= int(year) <= LAST_YEAR:
        raise ValueError(f"the year is outside {FIRST_YEAR}-{LAST_YEAR}")


def parse_datetime(text: str) -> datetime:
    """A timezone-aware datetime; a naive time is Paris time, DST-ambiguous ones are refused."""
    m = _DT.match(text)
    if not m:
        raise ValueError(
            "not a date-time (expected YYYY-MM-DD HH:MM or DD/MM/YYYY HH:MM)"
        )
    y, mo, d = (m["y"], m["m"], m["d"]) if m["y"] else (m["y2"], m["m2"], m["d2"])
    _in_years(text, y)
    tz = m["tz"]
    if not tz:
        try:
            zone = _paris_offset(int(y), int(mo), int(d), int(m["H"]))
            if isinstance(zone, str):
                raise ValueError(f"the time {zone}")
            return datetime(int(y), int(mo), int(d), int(m["H"]), int(m["M"]),
                            int(m["S"] or 0), tzinfo=zone)
        except ValueError as exc:
            if "Paris" in str(exc):
                raise
            raise ValueError(f"not a valid date-time ({exc})") from None
    try:
        naive = datetime(int(y), int(mo), int(d), int(m["H"]), int(m["M"]), int(m["S"] or 0))
    except ValueError as exc:
        raise ValueError(f"not a valid date-time ({exc})") from None
    if tz:
        if tz == "Z":
            offset = timedelta(0)
        else:
            sign = -1 if tz[0] == "-" else 1
            digits = tz[1:].replace(":", "")
            offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return naive.replace(tzinfo=timezone(offset)).astimezone(_paris_offset_at(naive, offset))
    raise AssertionError("unreachable")


def _paris_offset_at(naive: datetime, offset: timedelta) -> timezone:
    """The Paris offset at the instant ``naive - offset`` (UTC)."""
    instant = (naive - offset).replace(tzinfo=UTC)
    paris = instant.astimezone(PARIS).utcoffset()
    assert paris is not None
    return _fixed(paris)


def parse_date(text: str) -> date:
    m = _DATE.match(text)
    if not m:
        raise ValueError("not a date (expected YYYY-MM-DD or DD/MM/YYYY)")
    y, mo, d = (m["y"], m["m"], m["d"]) if m["y"] else (m["y2"], m["m2"], m["d2"])
    _in_years(text, y)
    try:
        return date(int(y), int(mo), int(d))
    except ValueError as exc:
        raise ValueError(f"not a valid date ({exc})") from None


def parse_money(text: str) -> Decimal:
    """A non-negative amount in euros: ``12.50`` or ``12,50``; never a float."""
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if not _MONEY.match(cleaned):
        raise ValueError("not an amount (expected e.g. 12,50 or 12.50)")
    try:
        value = Decimal(cleaned.replace(",", "."))
    except InvalidOperation:
        raise ValueError("not an amount (expected e.g. 12,50 or 12.50)") from None
    if value < 0:
        raise ValueError("negative amount")
    return abs(value).quantize(CENT)  # abs: -0 is read as 0.00


def parse_codes(text: str) -> tuple[str, ...]:
    codes = tuple(c.strip().upper() for c in text.split("+") if c.strip())
    for code in codes:
        if not _CODE.match(code):
            raise ValueError("not act codes (letters then up to 7 letters or digits each, "
                             "joined by '+', e.g. VG+MD)")
    return codes


def parse_flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("", "0", "false", "non", "n", "no"):
        return False
    if value in ("1", "true", "oui", "o", "yes", "y"):
        return True
    raise ValueError("not a 0/1 flag (0, 1, oui, non, true, false…)")


def parse_year(text: str, first: int, last: int) -> int:
    """A year of four ASCII digits within [first, last]."""
    value = text.strip()
    if not _YEAR.match(value):
        raise ValueError("not a year (four digits)")
    year = int(value)
    if not first <= year <= last:
        raise ValueError(f"not a year between {first} and {last}")
    return year


def parse_text(text: str) -> str:
    """A text cell, stripped; refused if it holds an invisible character (the value is not
    quoted: it may be a patient identifier)."""
    value = text.strip()
    if not value.isascii():
        found = _INVISIBLE.search(value)
        if found:
            raise ValueError(f"holds an invisible character U+{ord(found.group()):04X}")
    return value


def parse_association(text: str) -> str:
    """An association code: ASCII letters, digits, '-' or '_', upper-cased (``SOS-75``)."""
    value = text.strip().upper()
    if not _ASSOCIATION.match(value):
        raise ValueError("not an association code: 1 to 32 letters A-Z, digits, '-' or '_', "
                         "starting with a letter or digit (e.g. SOS-75)")
    return value


def parse_rpps(text: str) -> str:
    value = text.strip()
    if not _RPPS.match(value):
        raise ValueError("an RPPS number has 11 digits")
    return value


class ParisYear(NamedTuple):
    """Paris's wall-clock offsets over one year with its two changes, for set-based parsing.

    Wall-clock times before ``gap_start`` have ``before``, from ``gap_end`` to ``overlap_start``
    ``summer``, from ``overlap_end`` on ``after``; the hours in between (the spring gap and the
    autumn overlap) have no single offset and are left to ``parse_datetime``'s messages.
    """

    year: int
    gap_start: datetime
    gap_end: datetime
    overlap_start: datetime
    overlap_end: datetime
    before: str
    summer: str
    after: str


@lru_cache(maxsize=4)
def paris_years(first: int = 1976, last: int = 2100) -> tuple[ParisYear, ...]:
    """The years in [first, last] whose offsets follow the usual pattern (one gap, one overlap).

    Derived from ``_paris_offset`` itself (the tz database, hour by hour on the change days), so
    the set-based path cannot disagree with the row-by-row one; other years are left out.
    """
    years = []
    for year in range(first, last + 1):
        bad: list[tuple[datetime, str]] = []
        week = date(year, 1, 1)
        noon = _paris_offset(year, 1, 1, 12)
        while week.year == year:  # a week at a time, then the days of a week that changed
            offset = _paris_offset(week.year, week.month, week.day, 12)
            if offset != noon:
                day = next(d for d in (week - timedelta(days=b) for b in range(6, -1, -1))
                           if _paris_offset(d.year, d.month, d.day, 12) == offset)
                for hour in range(24):
                    zone = _paris_offset(day.year, day.month, day.day, hour)
                    if isinstance(zone, str):
                        bad.append((datetime(day.year, day.month, day.day, hour), zone))
                noon = offset
            week += timedelta(days=7)
        if len(bad) != 2 or "gap" not in bad[0][1] or "ambiguous" not in bad[1][1]:
            continue
        (gap, _), (overlap, _) = bad
        one_hour = timedelta(hours=1)
        offsets = [_paris_offset(t.year, t.month, t.day, t.hour)
                   for t in (datetime(year, 1, 1), gap + one_hour, overlap + one_hour)]
        years.append(ParisYear(year, gap, gap + one_hour, overlap, overlap + one_hour,
                               *(_iso_offset(z) for z in offsets)))
    return tuple(years)


def _iso_offset(zone: timezone | str) -> str:
    assert isinstance(zone, timezone)
    return datetime(2000, 1, 1, tzinfo=zone).isoformat()[19:]
