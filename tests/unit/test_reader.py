import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InputFileError
from ledger.ingest import reader
from ledger.pseudonym import Pseudonymiser


def test_utf8_with_bom_and_comma_separator(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes("\ufeffAssociation , Encounter_Ref\nSOS-75,É-1\n".encode())
    scan = reader.scan(path)
    assert scan.encoding == "utf-8" and scan.bom
    rows = reader.read_rows(scan)
    assert rows.header == ["association", "encounter_ref"] and rows.separator == ","
    assert list(rows.rows) == [(2, ["SOS-75", "É-1"])]


def test_windows_1252_file(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes("a;b\nSOS-75;Hôpital\n".encode("cp1252"))
    scan = reader.scan(path)
    assert scan.encoding == "cp1252"
    assert list(reader.read_rows(scan).rows) == [(2, ["SOS-75", "Hôpital"])]


def test_utf8_file_with_one_cp1252_line_marks_it(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes("a;b\nx;é\n".encode() + "y;è\n".encode("cp1252") + b"z;w\n")
    scan = reader.scan(path)
    assert scan.encoding == "utf-8" and scan.bad_lines == {3: reader.NOT_UTF8}
    rows = list(reader.read_rows(scan).rows)
    assert rows[1] == reader.Unreadable(3, reader.NOT_UTF8, "y;è\n")
    assert rows[2] == (4, ["z", "w"])


def test_utf16_is_rejected_with_line(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes("a;b\nx;y\n".encode("utf-16"))
    with pytest.raises(InputFileError) as err:
        reader.scan(path)
    assert "neither UTF-8 nor Windows-1252" in str(err.value)
    assert err.value.problem.line == 1


def test_quoted_multiline_record_keeps_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text('a;b\n1;"two\nlines"\n3;4\n', encoding="utf-8")
    rows = list(reader.read_rows(reader.scan(path)).rows)
    assert rows == [(2, ["1", "two\nlines"]), (4, ["3", "4"])]


def test_pseudonym_is_stable_keyed_and_opaque() -> None:
    a, b = Pseudonymiser(b"k" * 20), Pseudonymiser(b"j" * 20)
    assert a("P-1") == a(" P-1 ") != b("P-1")
    assert "P-1" not in a("P-1") and a("P-1").startswith("ph_")
    with pytest.raises(ValueError):
        Pseudonymiser(b"short")


def test_blocks_cut_whole_records_and_number_lines_as_the_reader(tmp_path: Path) -> None:
    lines = ["association;encounter_ref;reason"]
    for i in range(200):
        if i % 37 == 5:
            lines.append(f'SOS-75;E-{i};"a reason; on\ntwo lines"')
        elif i % 41 == 0:
            lines.append("")
        else:
            lines.append(f"SOS-75;E-{i};plain")
    path = tmp_path / "q.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    scan = reader.scan(path)
    whole = list(reader.read_rows(scan).rows)
    for size in (7, 64, 1000, 1 << 20):
        got = [r for b in reader.blocks(scan, size)
               for r in reader.records(b.text, b.first_line, ";")]
        assert got == whole
    assert any("two lines" in f for _, fields in whole for f in fields)


def _scan_line_by_line(path: Path) -> tuple[str, bool, set[int], int, int, bool]:
    """What ``scan`` learns, computed the plain way: one line of the file at a time."""
    digest, bom, bad, lines, nonascii, cp1252_bad = hashlib.sha256(), False, set(), 0, 0, False
    with path.open("rb") as handle:
        for lines, raw in enumerate(handle, start=1):
            digest.update(raw)
            bom = bom or (lines == 1 and raw.startswith(b"\xef\xbb\xbf"))
            if raw.isascii():
                continue
            try:
                raw.decode("utf-8")
                nonascii += 1
            except UnicodeDecodeError:
                bad.add(lines)
                try:
                    raw.decode("cp1252")
                except UnicodeDecodeError:
                    cp1252_bad = True
    return digest.hexdigest(), bom, bad, lines, nonascii, cp1252_bad


lines_of_bytes = st.lists(st.sampled_from(
    [b"a;b;1", b"", b"\xc3\xa9t\xc3\xa9", b"caf\xe9", b"x\ry", b"\xef\xbb\xbfh", b"\x81", b"z" * 9]),
    min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(lines=lines_of_bytes, final_newline=st.booleans(), size=st.integers(1, 40))
def test_scan_by_blocks_learns_what_a_line_by_line_pass_learns(
        tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], final_newline: bool,
        size: int) -> None:
    path = tmp_path_factory.mktemp("scan") / "f.csv"
    path.write_bytes(b"\n".join(lines) + (b"\n" if final_newline else b""))
    if not path.read_bytes():
        return
    sha, bom, bad, count, nonascii, cp1252_bad = _scan_line_by_line(path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "SCAN_BYTES", size)
        try:
            got = reader.scan(path)
        except InputFileError:
            assert bad and nonascii == 0 and cp1252_bad  # neither UTF-8 nor Windows-1252
            return
    assert (got.sha256, got.bom, got.lines) == (sha, bom, count)
    assert set(got.bad_lines) == (bad if nonascii or not bad else set())
    assert got.encoding == ("cp1252" if bad and nonascii == 0 else "utf-8")


def _records_of(path: Path) -> list[reader.Record]:
    return list(reader.read_rows(reader.scan(path)).rows)


def test_a_bare_cr_in_an_unquoted_field_quarantines_that_record_only(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"a;b\n1;x\ry\n2;z\n3;\"q\rr\"\n")
    rows = _records_of(path)
    assert rows[0] == reader.Unreadable(2, rows[0].reason, "1;x\ry\n")  # type: ignore[union-attr]
    assert "line break (CR)" in rows[0].reason  # type: ignore[union-attr]
    assert rows[1:] == [(3, ["2", "z"]), (4, ["3", "q\rr"])]


def test_a_field_over_the_csv_limit_quarantines_that_record_only(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    huge = "h" * 200_000
    path.write_text(f'a;b\n1;"{huge}"\n2;z\n3;{huge}\n4;w\n', encoding="utf-8")
    rows = _records_of(path)
    assert isinstance(rows[0], reader.Unreadable) and rows[0].line == 2
    assert "longer than" in rows[0].reason
    assert rows[1] == (3, ["2", "z"])
    assert isinstance(rows[2], reader.Unreadable) and rows[2].line == 4  # unquoted alike
    assert rows[3] == (5, ["4", "w"])


def test_an_unbalanced_quote_loses_only_its_line(tmp_path: Path) -> None:
    lines = ["a;b"] + [f"{i};v{i}" for i in range(2, 40)]
    lines[10] = '10;"never closed'
    path = tmp_path / "e.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = _records_of(path)
    bad = [r for r in rows if isinstance(r, reader.Unreadable)]
    assert [(b.line, b.text) for b in bad] == [(11, '10;"never closed\n')]
    assert "not closed within" in bad[0].reason
    good = [r for r in rows if not isinstance(r, reader.Unreadable)]
    assert [line for line, _ in good] == [n for n in range(2, 40) if n != 11]


def test_a_nul_byte_quarantines_its_line_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"a;b\n1;x\n2;\x00y\n3;z\n")
    scan = reader.scan(path)
    assert scan.bad_lines == {3: reader.NUL_BYTE}
    rows = list(reader.read_rows(scan).rows)
    assert rows == [(2, ["1", "x"]), reader.Unreadable(3, reader.NUL_BYTE, "2;\x00y\n"),
                    (4, ["3", "z"])]


def test_a_nul_byte_in_the_header_still_rejects_the_file(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"a;\x00b\n1;x\n")
    with pytest.raises(InputFileError):
        reader.scan(path)


quote_lines = st.lists(st.sampled_from(
    ['x;"open', 'y;"one\nline"', 'z;plain', 'w;mid"quote', '"', '""', 'v;"a"";b"', 'u;"c"d',
     "", 't;"two', 's;close"', 'r;"\r"']), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(lines=quote_lines, size=st.integers(1, 60))
def test_blocks_cut_where_the_reader_cuts_whatever_the_quotes(
        tmp_path_factory: pytest.TempPathFactory, lines: list[str], size: int) -> None:
    path = tmp_path_factory.mktemp("quotes") / "q.csv"
    path.write_text("a;b\n" + "\n".join(lines) + "\n", encoding="utf-8")
    scan = reader.scan(path)
    whole = list(reader.read_rows(scan).rows)
    got = [r for b in reader.blocks(scan, size) for r in reader.records(b.text, b.first_line, ";")]
    assert got == whole
    # Every line is accounted for: in a record read, or in an unreadable one.
    first_lines = {r.line if isinstance(r, reader.Unreadable) else r[0] for r in whole}
    assert first_lines <= set(range(2, scan.lines + 1))
