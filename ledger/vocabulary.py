"""The words both sides share: regulation origins, acts, the facts' time zone, money's cent.

The write side (``ledger``) and the read side (``projections``) import them from here, so that
neither defines them again and the write side never imports the read side.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

#: Facts are Paris time: a naive time in an export is read as Paris wall-clock time.
PARIS = ZoneInfo("Europe/Paris")

#: Who regulated the call: the public SAS, SOS Médecins itself, the SAMU–Centre 15, or nobody.
ORIGINS = ("SAS", "SOS", "C15", "NONE")
Origin = Literal["SAS", "SOS", "C15", "NONE"]

#: Where the doctor saw the patient: at a centre, or at home.
ACTS = ("consultation", "visit")
Act = Literal["consultation", "visit"]

#: Money is ``Decimal`` euros with two places.
CENT = Decimal("0.01")
