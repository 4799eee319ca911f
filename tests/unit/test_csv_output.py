"""Every CSV the CLI writes is safe to open in a spreadsheet: no cell is taken for a formula.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a CR gets a leading single quote
(OWASP, "CSV injection"), unless it is a plain decimal number such as ``-25.00``. Checked on the
helper, then on the compare, replay and reconcile writers with crafted rows (no database).
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from cli import render
from cli.compare_cmd import Format, ReplayFormat, show, show_replay
from cli.reconcile_cmd import ReconcileFormat
from cli.reconcile_cmd import show as show_reconcile
from projections.compare import CompareResult
from projections.reconcile import Reconciliation

EVIL = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize("text", [EVIL, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1+1",
                                  "\r=1+1", "-", "+", "=", "-1e5", "-25.00 ", "--25"])
def test_formula_like_cells_get_a_leading_quote(text: str) -> None:
    assert render.csv_cell(text) == "'" + text


@pytest.mark.parametrize(("value", "text"), [
    ("-25.00", "-25.00"), ("+3", "+3"), ("25.00", "25.00"), ("-7", "-7"), ("SOS-75", "SOS-75"),
    (Decimal("-25"), "-25.00"), (Decimal("15.5"), "15.50"), (12, "12"), (None, ""),
    (date(2023, 9, 12), "2023-09-12"), ("E-2023-0000123", "E-2023-0000123"), ("", ""),
    ("a=b", "a=b"), (" =1+1", " =1+1"),
])
def test_values_and_numbers_are_left_as_they_are(value: Any, text: str) -> None:
    assert render.csv_cell(value) == text


def test_non_ascii_digits_are_not_a_number() -> None:
    assert render.csv_cell("-\u0661\u0662") == "'-\u0661\u0662"   # Arabic-Indic digits


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def _comparison(*rows: dict[str, Any]) -> CompareResult:
    totals = {"encounters": 1, "base_total": Decimal("40.00"), "alt_total": Decimal("25.00"),
              "difference": Decimal("-15.00")}
    return CompareResult("historical", "parity", None, ("association", "month"), list(rows),
                         totals)


ROW = {"association": EVIL, "month": "@2023-09", "encounters": 1,
       "base_total": Decimal("40.00"), "alt_total": Decimal("25.00"),
       "difference": Decimal("-15.00")}


def test_compare_csv_escapes_an_injected_association() -> None:
    out = io.StringIO()
    show(_comparison(ROW), Format.csv, out)
    assert _read(out.getvalue()) == [
        ["association", "month", "encounters", "base_total", "alt_total", "difference"],
        ["'" + EVIL, "'@2023-09", "1", "40.00", "25.00", "-15.00"]]


def test_replay_csv_escapes_an_injected_association() -> None:
    out = io.StringIO()
    show_replay(_comparison(ROW), "historical", ReplayFormat.csv, out)
    assert _read(out.getvalue()) == [["association", "month", "encounters", "total"],
                                     ["'" + EVIL, "'@2023-09", "1", "40.00"]]


def test_reconcile_csv_escapes_injected_references_and_reasons() -> None:
    finding = {"association": EVIL, "encounter_ref": "+E-1", "act_day": date(2023, 9, 12),
               "expected": Decimal("40.00"), "paid": Decimal("25.00"),
               "shortfall": Decimal("15.00"), "decided_at": date(2023, 10, 1),
               "rejected_codes": "SNP", "reason": '=HYPERLINK("http://x.example","see")'}
    result = Reconciliation("historical", [finding], [], {})
    out = io.StringIO()
    show_reconcile(result, ReconcileFormat.csv, 20, out)
    assert _read(out.getvalue()) == [
        ["association", "encounter_ref", "act_day", "expected", "paid", "shortfall",
         "decided_at", "rejected_codes", "reason"],
        ["'" + EVIL, "'+E-1", "2023-09-12", "40.00", "25.00", "15.00", "2023-10-01", "SNP",
         "'" + '=HYPERLINK("http://x.example","see")']]
