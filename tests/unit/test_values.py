from datetime import date, datetime
from decimal import Decimal

import pytest

from ledger.ingest import values
from ledger.vocabulary import PARIS


class TestDateTimes:
    @pytest.mark.parametrize("text", ["14/09/2023 21:05", "2023-09-14T21:05", "2023-09-14 21:05:00"])
    def test_formats_are_paris_time(self, text: str) -> None:
        parsed = values.parse_datetime(text)
        assert parsed == datetime(2023, 9, 14, 21, 5, tzinfo=PARIS)
        assert parsed.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]

    def test_explicit_offset(self) -> None:
        assert values.parse_datetime("2023-09-14T19:05Z") == datetime(2023, 9, 14, 21, 5,
                                                                       tzinfo=PARIS)

    def test_dst_ambiguous_time_is_refused(self) -> None:
        with pytest.raises(ValueError, match="ambiguous"):
            values.parse_datetime("29/10/2023 02:30")

    def test_dst_gap_is_refused(self) -> None:
        with pytest.raises(ValueError, match="does not exist"):
            values.parse_datetime("26/03/2023 02:30")

    def test_ambiguous_time_with_offset_is_accepted(self) -> None:
        parsed = values.parse_datetime("2023-10-29T02:30+01:00")
        assert parsed.utcoffset().total_seconds() == 3600  # type: ignore[union-attr]

    @pytest.mark.parametrize("text", ["31/02/2023 10:00", "2023-13-01 10:00", "14-09-2023 10:00"])
    def test_bad_dates(self, text: str) -> None:
        with pytest.raises(ValueError):
            values.parse_datetime(text)

    def test_date(self) -> None:
        assert values.parse_date("01/10/2023") == date(2023, 10, 1)


class TestMoney:
    @pytest.mark.parametrize("text,expected", [("80,00", "80.00"), ("12.5", "12.50"), ("0", "0.00")])
    def test_decimal(self, text: str, expected: str) -> None:
        value = values.parse_money(text)
        assert isinstance(value, Decimal) and value == Decimal(expected)

    @pytest.mark.parametrize("text", ["-1,00", "1e3", "12,345", "abc", "1 000,00x"])
    def test_refused(self, text: str) -> None:
        with pytest.raises(ValueError):
            values.parse_money(text)


def test_codes_and_flags() -> None:
    assert values.parse_codes("vg+md + mn") == ("VG", "MD", "MN")
    with pytest.raises(ValueError):
        values.parse_codes("VG+M D")
    assert values.parse_flag("1") is True and values.parse_flag("") is False
    with pytest.raises(ValueError):
        values.parse_flag("2")
    with pytest.raises(ValueError):
        values.parse_rpps("1234")


class TestDoubtfulInputs:
    """Values that look like numbers, dates or references but are not what they seem."""

    @pytest.mark.parametrize("text", ["-0", "-0,00", "-0.0"])
    def test_minus_zero_is_read_as_zero(self, text: str) -> None:
        assert str(values.parse_money(text)) == "0.00"

    @pytest.mark.parametrize("parse,text", [
        (values.parse_money, "\u0662\u0665,\u0660\u0660"),
        (values.parse_datetime, "\u0661\u0664/09/2023 10:00"),
        (values.parse_date, "2023-09-\u0661\u0664"),
        (values.parse_rpps, "\u0661" * 11),
        (lambda t: values.parse_year(t, 1890, 2100), "\u0661\u0669\u0669\u0660"),
    ])
    def test_digits_of_other_scripts_are_refused(self, parse: object, text: str) -> None:
        with pytest.raises(ValueError):
            parse(text)  # type: ignore[operator]

    @pytest.mark.parametrize("text", ["9999-12-31 10:00", "31/12/1999 23:00", "01/01/2100 00:00"])
    def test_times_outside_the_years_of_the_ledger_are_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="outside 2000-2099"):
            values.parse_datetime(text)
        with pytest.raises(ValueError, match="outside 2000-2099"):
            values.parse_date(text[:10])

    @pytest.mark.parametrize("text", ["E-1\ufeff", "\u200bP-1", "P\u200d1", "E\u00ad1"])
    def test_invisible_characters_are_refused_without_quoting_the_value(self, text: str) -> None:
        with pytest.raises(ValueError) as err:
            values.parse_text(text)
        assert "invisible character U+" in str(err.value)
        assert text.strip() not in str(err.value)

    @pytest.mark.parametrize("text,expected", [(" sos-75 ", "SOS-75"), ("SOS-2A", "SOS-2A"),
                                               ("SOS_13", "SOS_13")])
    def test_association_codes(self, text: str, expected: str) -> None:
        assert values.parse_association(text) == expected

    @pytest.mark.parametrize("text", ["=cmd|' /C calc'!A0", "+SOS", "-75", "@SUM(A1)", "SOS 75",
                                      "SOS-é", "S" * 33, "\u0661\u0662"])
    def test_association_codes_that_are_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="not an association code"):
            values.parse_association(text)
