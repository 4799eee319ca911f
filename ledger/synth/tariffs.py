"""What a synthetic act bills: its NGAP codes from the act and the time, and their amounts.

Amounts are ``Decimal`` (working table of ``/work/shared/domain.md``); the generator formats
them once per (codes, tariff period) and reuses the text, so money is never a float.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from functools import lru_cache

#: G and VG by effective date, newest first (25 €; 26.50 € with MMG; 30 €, convention 2024).
BASE_TARIFF = ((date(2024, 12, 22), Decimal("30.00")), (date(2023, 11, 1), Decimal("26.50")),
               (date(2017, 5, 1), Decimal("25.00")))
#: Flat majorations (euros).
MAJORATIONS = {
    "MD": Decimal("10.00"), "VRN": Decimal("46.00"), "VRM": Decimal("59.50"),
    "VRD": Decimal("30.00"), "CRN": Decimal("42.50"), "CRM": Decimal("51.50"),
    "CRD": Decimal("26.50"), "SNP": Decimal("15.00"),
}
#: The SNP majoration exists from this day (arrêté of 11 July 2022).
SNP_START = date(2022, 7, 13)
#: The SNP is billed when the act follows regulation within this many minutes (48 h).
SNP_WINDOW = 48 * 60
BASE_CODES = frozenset({"G", "VG"})


def base_period(day: date) -> int:
    """Index into ``BASE_TARIFF`` of the G/VG amount in force on ``day``."""
    for i, (since, _) in enumerate(BASE_TARIFF):
        if day >= since:
            return i
    raise ValueError(f"no G/VG tariff before {BASE_TARIFF[-1][0]}: {day}")


def tariff(code: str, period: int) -> Decimal:
    """The amount of one code in a G/VG tariff period."""
    return BASE_TARIFF[period][1] if code in BASE_CODES else MAJORATIONS[code]


def amount(codes: Iterable[str], period: int) -> Decimal:
    """The total billed for ``codes`` in a G/VG tariff period."""
    return sum((tariff(c, period) for c in codes), Decimal("0.00"))


def french(value: Decimal) -> str:
    """``80,00``: two decimals, comma separator."""
    return f"{value:.2f}".replace(".", ",")


@lru_cache(maxsize=512)
def amount_text(codes: str, period: int) -> str:
    """The billed amount of ``+``-joined codes as export text, e.g. ``'VG+MD'`` → ``'35,00'``."""
    return french(amount(codes.split("+"), period))


def pdsa_band(minute: int, sunday: bool) -> str:
    """The PDSA majoration letter for an act at ``minute`` of the day: N, M or D.

    ``M`` midnight (00:00–06:00), ``N`` night (20:00–24:00, 06:00–08:00), ``D`` Sunday or
    public holiday daytime (08:00–20:00).
    """
    if minute < 360:
        return "M"
    if minute < 480 or minute >= 1200:
        return "N"
    if sunday:
        return "D"
    raise ValueError(f"minute {minute} of a weekday is not in PDSA hours")


def in_pdsa_hours(minute: int, sunday: bool) -> bool:
    """Base PDSA hours: every night 20:00–08:00, Sundays and public holidays all day."""
    return sunday or minute < 480 or minute >= 1200


def billed_codes(visit: bool, pdsa: bool, minute: int, sunday: bool, snp: bool) -> str:
    """The ``+``-joined codes an act bills.

    Args:
        visit: A home visit (VG) rather than a consultation (G).
        pdsa: Done on a regulated PDSA duty (then VRx/CRx replace MD).
        minute: Minute of the day of the act.
        sunday: A Sunday or public holiday.
        snp: Add the SNP majoration.

    Returns:
        E.g. ``VG+MD``, ``VG+VRN``, ``G+CRD``, ``G+SNP``.
    """
    if pdsa:
        band = pdsa_band(minute, sunday)
        text = f"VG+VR{band}" if visit else f"G+CR{band}"
    else:
        text = "VG+MD" if visit else "G"
    return f"{text}+SNP" if snp else text
