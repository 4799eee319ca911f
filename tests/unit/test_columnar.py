"""The fast path frames only rows it encodes exactly as the plain route does.

For every generated row, the fast path either leaves it out (a bad row is then the row-by-row
preparer's, message included; a good one sends the block the plain route) or frames it with the
same aggregate id and the very event state the plain route writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import store
from ledger.ingest import block_sql, columnar, prepare, reader
from ledger.ingest.events import BatchEvents
from ledger.ingest.rows import DECISION_COLUMNS, ENCOUNTER_COLUMNS
from ledger.synth.generator import ENCOUNTER_COLUMNS as SYNTH_COLUMNS
from ledger.vocabulary import PARIS

KEY = b"columnar-test-key-0123"
ENCOUNTER_HEADER = SYNTH_COLUMNS  # the canonical export's columns, as synth writes them
WITH_STATUS = (*SYNTH_COLUMNS, "status")
DECISION_HEADER = DECISION_COLUMNS
EVENTS = BatchEvents(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=PARIS), "tester", "f.csv",
                     "0" * 64, UUID(int=2))


@cache
def _preparer(kind: str, header: tuple[str, ...]) -> tuple[prepare.RowContext,
                                                          columnar.BlockPreparer]:
    cols = ENCOUNTER_COLUMNS if kind == "encounters" else DECISION_COLUMNS
    ctx = prepare.RowContext(kind, header, frozenset(cols), ";", KEY)
    return ctx, columnar.BlockPreparer(ctx, EVENTS)


def _block(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def check_framed(kind: str, expected: list[prepare.Good | prepare.Bad],
                 framed: columnar.Framed) -> int:
    """Assert a framed block holds the plain route's events and bad rows; return its rows."""
    goods = [r for r in expected if isinstance(r, prepare.Good)]
    assert framed.bad == [r for r in expected if isinstance(r, prepare.Bad)]
    assert framed.lines.tolist() == [g.line for g in goods]
    plain = [EVENTS.recorded(g) if kind == "encounters" else EVENTS.decided(g, 2) for g in goods]
    assert list(store.framed_events(framed.rows, framed.ends, framed.topic)) == [
        (e.originator_id.bytes, e.state) for e in plain]  # type: ignore[union-attr]
    # DuckDB frames the COPY rows as the writer's own framing does.
    rows, ends = store.frame_states([e.state for e in plain], framed.topic,
                                    b"".join(g.oid.bytes for g in goods))
    assert (framed.rows, framed.ends.tolist()) == (rows, ends.tolist())
    assert framed.one_by_one() == expected  # as the plain route takes a framed block back
    if kind == "decisions":
        assert framed.shas is not None and framed.refs is not None
        assert framed.shas.tolist() == [g.sha for g in goods]
        assert framed.refs.tolist() == [g.ref for g in goods]
    return len(goods)


def check_block(kind: str, header: tuple[str, ...], lines: list[str]) -> int:
    """Assert both routes agree on the lines, as a block or else line by line; return how many
    rows the fast path framed."""
    ctx, preparer = _preparer(kind, header)
    expected = list(prepare.prepare(ctx, reader.records(_block(lines), 2, ";")))
    framed = preparer(_block(lines), 2)
    if framed is not None:
        return check_framed(kind, expected, framed)
    taken = 0
    for i, line in enumerate(lines):
        alone = list(prepare.prepare(ctx, reader.records(_block([line]), 2 + i, ";")))
        got = preparer(_block([line]), 2 + i)
        if got is None:  # left out though good: the plain route takes it
            assert len(alone) == 1 and isinstance(alone[0], prepare.Good)
        else:
            taken += check_framed(kind, alone, got)
    return taken


def _times() -> st.SearchStrategy[str]:
    moments = st.datetimes(min_value=datetime(2016, 1, 1), max_value=datetime(2027, 12, 31))
    change_days = st.sampled_from([datetime(2023, 3, 26), datetime(2023, 10, 29),
                                   datetime(2024, 3, 31), datetime(2024, 10, 27)])
    near_change = st.builds(lambda d, m: d + timedelta(minutes=m), change_days,
                            st.integers(0, 6 * 60))
    formats = st.sampled_from(["%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                               " %d/%m/%Y %H:%M ", "%d/%m/%YT%H:%M", "%Y-%m-%d %H:%M+02:00"])
    formatted = st.builds(lambda t, f: t.strftime(f), st.one_of(moments, near_change), formats)
    odd = st.sampled_from(["", "31/02/2023 10:00", "2023-01-01 24:00", "2023-13-01 10:00",
                           "2023-01-01 10:00Z", "01/01/0001 00:00", "\u0661\u0662/01/2023 10:00",
                           "2023-06-01\t10:00", "1/1/2023 10:00", "9999-12-31 10:00",
                           "31/12/1999 23:59", "01/01/2100 00:00"])
    return st.one_of(formatted, odd)


def _text(*extra: str) -> st.SearchStrategy[str]:
    alphabet = st.sampled_from(["A", "z", "0", "-", " ", "é", "\u00a0", "\t", "\\", "/", "\u2003",
                                "Ω", "_", "\x1f", "\ufeff", "\u200b", *extra])
    return st.text(alphabet, max_size=6)


def _cells() -> dict[str, st.SearchStrategy[str]]:
    # Every spelling the row path knows, in both cases (the fast path reads a flag's initial).
    flags = st.sampled_from(["0", "1", "true", "FALSE", "oui", "NON", "o", "N", "yes", "No",
                             "Y", "y", "", " 1 ", "2", "vrai", "ouI"])
    codes = st.one_of(st.sampled_from(["G", "G+SNP", "vg + md", "G++MD", "", "+", "TOOLONGCODE",
                                       "G+É", " VG+VRD "]), _text("+"))
    money = st.one_of(st.sampled_from(["25,00", "25.5", "0", "-1,00", "1 000,00", "1\u00a0000,00",
                                       "12,345", "abc", "", "007,5", " 51,50 ", "999999999,99"]),
                      st.decimals(0, 10**9, places=2).map(str))
    return {
        "association": st.one_of(st.sampled_from(["SOS-75", " sos-13 ", "SOS 69", "", "SOS-é",
                                                  "SOS\u00a0", "ß", "=cmd|' /C calc'!A0", "-75",
                                                  "SOS_2A", "S" * 33, "\u0661\u0662"]), _text()),
        "encounter_ref": st.one_of(st.just("E-2023-0000001"), _text()),
        "regulation_origin": st.sampled_from(["SOS", "sas", "C15", "NONE", "none", "XYZ", "",
                                              " SAS "]),
        "regulated_at": _times(),
        "performed_at": _times(),
        "act": st.sampled_from(["visit", "consultation", "Visit", " visit ", "home", ""]),
        "patient_ref": st.one_of(st.just("P-75-1585"), _text()),
        "patient_birth_year": st.sampled_from(["", "1990", " 1990 ", "1889", "2101", "19a0",
                                               "+1990", "\u0661\u0669\u0669\u0660", "0990"]),
        "doctor_rpps": st.sampled_from(["10101010101", " 10101010101 ", "123", "1010101010a", ""]),
        "treating_doctor": flags,
        "pdsa": flags,
        "billed_codes": codes,
        "billed_amount": money,
        "invoice_ref": st.one_of(st.sampled_from(["", "F-1", " F 2 ", "É"]), _text()),
        "status": st.sampled_from(["", "active", "VOID", "void", "gone", " Active "]),
        "decided_at": st.one_of(_times().map(lambda t: t[:10]),
                                st.sampled_from(["2023-02-29", "29/02/2024", " 01/04/2023 "])),
        "paid_amount": money,
        "paid_codes": codes,
        "rejected_codes": codes,
        "reason": st.one_of(st.sampled_from(["", "hors nomenclature", "Acte non remboursé"]),
                            _text()),
    }


def _rows(header: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    cells = _cells()
    row = st.tuples(*(cells.get(c, _text()) for c in header)).map(";".join)  # text by default
    odd_line = st.sampled_from(["", " ; ;", "SOS-75;E-1", ";;;;;;;;;;;;;;;;;;;"])
    return st.lists(st.one_of(row, row, row, odd_line), min_size=1, max_size=25)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_encounter_rows_agree(data: st.DataObject) -> None:
    header = data.draw(st.sampled_from([ENCOUNTER_HEADER, WITH_STATUS]))
    check_block("encounters", header, data.draw(_rows(header)))


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_decision_rows_agree(data: st.DataObject) -> None:
    check_block("decisions", DECISION_HEADER, data.draw(_rows(DECISION_HEADER)))


def test_every_hour_around_the_dst_changes_agrees() -> None:
    lines = []
    for day in ("26/03/2023", "29/10/2023", "31/03/2024", "27/10/2024", "28/03/2027"):
        for hour in range(6):
            for minute in ("00", "59"):
                lines.append(f"SOS-75;E-{day}-{hour}-{minute};NONE;;{day} {hour:02d}:{minute};"
                             "visit;P-1;;10101010101;0;0;VG;25,00;")
    taken = check_block("encounters", ENCOUNTER_HEADER, lines)
    assert taken == len(lines) - 5 * 2  # all but the change hour (gap or overlap) of each day


def test_every_flag_spelling_agrees() -> None:
    spellings = ["", "0", "1", "false", "true", "non", "oui", "n", "o", "no", "yes", "y"]
    spellings += [f" {s.upper()} " for s in spellings] + ["Oui", "nO"]
    lines = [f"SOS-75;E-{i};NONE;;01/06/2023 10:00;visit;P-1;;10101010101;{a};{b};VG;25,00;"
             for i, (a, b) in enumerate(zip(spellings, reversed(spellings), strict=True))]
    assert check_block("encounters", ENCOUNTER_HEADER, lines) == len(lines)


def test_lines_that_end_with_cr_agree() -> None:
    lines = [f"SOS-75;E-{i};NONE;;01/06/2023 10:00;visit;P-1;;10101010101;0;1;VG;25,00;{end}"
             for i, end in enumerate(["\r", "F-1\r", "F-1 \r", " \r", "F-1"])]
    assert check_block("encounters", ENCOUNTER_HEADER, lines) == len(lines)


def test_regulation_and_act_at_other_offsets_agree() -> None:
    # Regulated in summer time, the act in winter time (and the other way round), either order.
    times = ["01/07/2023 10:30", "01/11/2023 10:00", "26/03/2023 01:59", "26/03/2023 03:00",
             "29/10/2023 01:59", "29/10/2023 03:00"]
    lines = [f"SOS-75;E-{i}-{j};SAS;{reg};{perf};visit;P-1;;10101010101;0;1;VG;25,00;"
             for i, reg in enumerate(times) for j, perf in enumerate(times)]
    assert check_block("encounters", ENCOUNTER_HEADER, lines) == 21  # the act not before


def test_plain_canonical_rows_are_all_taken(tmp_path: Path) -> None:
    from datetime import date

    from ledger.synth import generate

    data = generate(tmp_path, associations=2, start=date(2023, 1, 1), end=date(2023, 12, 31),
                    encounters=500, seed=3)
    for kind, path in (("encounters", data.encounters_path), ("decisions", data.decisions_path)):
        scan = reader.scan(path)
        header = tuple(reader.read_rows(scan).header)
        (block,) = reader.blocks(scan)
        lines = block.text.splitlines()
        assert check_block(kind, header, lines) == len(lines)


def test_a_year_left_out_of_the_paris_table_goes_row_by_row(monkeypatch: Any) -> None:
    from ledger.ingest import values

    years = tuple(y for y in values.paris_years() if y.year != 2023)
    monkeypatch.setattr(block_sql, "paris_years", lambda: years)
    ctx = prepare.RowContext("encounters", ENCOUNTER_HEADER, frozenset(ENCOUNTER_COLUMNS), ";",
                             KEY)
    preparer = columnar.BlockPreparer(ctx, EVENTS)
    lines = [f"SOS-75;E-{y};NONE;;01/06/{y} 10:00;visit;P-1;;10101010101;0;0;VG;25,00;"
             for y in (2022, 2023, 2024)]
    assert preparer(_block(lines), 2) is None  # 2023 is left out, and it is a good row
    framed = preparer(_block([lines[0], lines[2]]), 2)
    assert framed is not None and len(framed) == 2


def test_a_block_with_an_encounter_twice_is_not_framed() -> None:
    lines = [f"SOS-75;E-é{i};NONE;;01/06/2023 10:{i:02d};visit; P-ü{i} ;;10101010101;0;0;VG;"
             "25,00;Fé" for i in range(20)]
    _, preparer = _preparer("encounters", ENCOUNTER_HEADER)
    assert preparer(_block(lines), 2) is not None
    assert preparer(_block(lines + lines[:1]), 2) is None
    assert check_block("encounters", ENCOUNTER_HEADER, lines) == len(lines)


def test_a_bad_last_line_without_a_line_break_is_quarantined() -> None:
    # A file's last line may lack its line break: the fast path counts it among the block's
    # lines, so a bad row there is among the framed block's bad rows, not lost.
    row = "SOS-75;E-{};NONE;;01/06/2023 10:00;{};P-1;;10101010101;0;0;VG;25,00;"
    ctx, preparer = _preparer("encounters", ENCOUNTER_HEADER)
    for last, bad in ((row.format(9, "visit"), 0), (row.format(9, "swim"), 1)):
        text = row.format(1, "visit") + "\n" + last
        got = preparer(text, 2)
        assert got is not None
        expected = list(prepare.prepare(ctx, reader.records(text, 2, ";")))
        assert check_framed("encounters", expected, got) == 2 - bad
        assert len(got.bad) == bad
