"""Reading an export file: encoding, separator, header, and records with their line numbers.

A first pass hashes the file and decides its encoding line by line: UTF-8 (with or without BOM) or
Windows-1252. A UTF-8 file with a few lines that are not UTF-8, or a line holding a NUL byte, keeps
its good lines; the bad ones are reported by line (``bad_lines``) so that they are quarantined,
not lost.

A record is one line, or several when a quoted field holds line breaks (at most
``MAX_RECORD_LINES``). A record that cannot be read (a quote left open, a bare CR in an unquoted
field, a field over the CSV module's limit, a bad line) comes as ``Unreadable``: its line, the
reason and its text, and reading goes on at the next record.
"""

from __future__ import annotations

import csv
import hashlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ledger.errors import InputFileError, Problem

ENCODINGS = ("utf-8", "cp1252")
NOT_UTF8 = "line is not valid UTF-8 (Windows-1252 bytes in a UTF-8 file?)"
NUL_BYTE = "line holds a NUL byte"
#: The most lines one record may span (a quoted field holding line breaks); past that, the line
#: that opened the quote is quarantined alone and reading resumes at the line after it.
MAX_RECORD_LINES = 10


@dataclass
class FileScan:
    """What the first pass learned about a file."""

    path: Path
    sha256: str
    encoding: str
    bom: bool
    bad_lines: dict[int, str] = field(default_factory=dict)  # line -> why it is unreadable
    lines: int = 0


#: Bytes read at a time by ``scan`` (whole lines of ASCII are only counted).
SCAN_BYTES = 4 << 20


def scan(path: Path, forced_encoding: str | None = None) -> FileScan:
    """Hash the file and decide its encoding.

    Args:
        path: the export file.
        forced_encoding: the profile's encoding, if it fixes one.

    Returns:
        A ``FileScan``; raises ``InputFileError`` for a file that is neither UTF-8 nor
        Windows-1252 (for example UTF-16 or binary).
    """
    digest = hashlib.sha256()
    utf8_ok_nonascii = 0
    utf8_bad: set[int] = set()
    nul_lines: set[int] = set()
    cp1252_bad = False
    bom = False
    lines = 0
    name = str(path)

    def check(piece: bytes) -> None:
        """Whole lines (the last may lack its end): count them, look at any that is not ASCII."""
        nonlocal utf8_ok_nonascii, cp1252_bad, bom, lines
        if piece.isascii() and b"\x00" not in piece:  # the common case, at C speed
            lines += piece.count(b"\n") + (not piece.endswith(b"\n"))
            return
        split = piece.split(b"\n")  # lines end at LF only, as when iterating the file
        if not split[-1]:
            split.pop()
        for raw in split:
            lines += 1
            if lines == 1 and raw.startswith(b"\xef\xbb\xbf"):
                bom = True
            if lines == 1 and (b"\x00" in raw or raw[:2] in (b"\xff\xfe", b"\xfe\xff")):
                raise InputFileError(
                    Problem(name, lines, None,
                            "file is neither UTF-8 nor Windows-1252 (NUL bytes: UTF-16 or binary?)")
                )
            if b"\x00" in raw:  # a data line: quarantined, the file goes on
                nul_lines.add(lines)
                continue
            if raw.isascii():
                continue
            try:
                raw.decode("utf-8")
                utf8_ok_nonascii += 1
            except UnicodeDecodeError:
                utf8_bad.add(lines)
                try:
                    raw.decode("cp1252")
                except UnicodeDecodeError:
                    cp1252_bad = True

    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputFileError(Problem(name, 0, None, f"cannot read file: {exc.strerror}")) from None
    with handle:
        rest = b""
        while chunk := handle.read(SCAN_BYTES):
            digest.update(chunk)
            chunk = rest + chunk
            end = chunk.rfind(b"\n") + 1
            rest = chunk[end:]
            if end:
                check(chunk[:end])
        if rest:
            check(rest)
    if lines == 0:
        raise InputFileError(Problem(name, 1, None, "file is empty: a header row is required"))
    sha = digest.hexdigest()
    if forced_encoding:
        encoding = forced_encoding.lower().replace("windows-1252", "cp1252")
        if encoding not in ENCODINGS:
            raise InputFileError(Problem(name, 0, None, f"unsupported encoding {forced_encoding!r}"))
        bad = utf8_bad if encoding == "utf-8" else set()
        return FileScan(path, sha, encoding, bom, _bad_lines(bad, nul_lines), lines)
    if utf8_bad and utf8_ok_nonascii == 0:
        if cp1252_bad:
            raise InputFileError(
                Problem(name, min(utf8_bad), None, "file is neither UTF-8 nor Windows-1252")
            )
        return FileScan(path, sha, "cp1252", bom, _bad_lines(set(), nul_lines), lines)
    return FileScan(path, sha, "utf-8", bom, _bad_lines(utf8_bad, nul_lines), lines)


def _bad_lines(not_utf8: set[int], nul: set[int]) -> dict[int, str]:
    return {**dict.fromkeys(not_utf8, NOT_UTF8), **dict.fromkeys(nul, NUL_BYTE)}


class Line(NamedTuple):
    """One physical line of the file, decoded, and why it cannot be read (None if it can)."""

    number: int
    text: str
    bad: str | None = None


def _decoded_lines(scan_: FileScan) -> Iterator[Line]:
    with scan_.path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if lineno == 1 and scan_.bom:
                raw = raw[3:]
            bad = scan_.bad_lines.get(lineno)
            if bad is not None:
                # Lossless: bytes that are not Windows-1252 either come as \\xNN escapes.
                yield Line(lineno, raw.decode("cp1252", errors="backslashreplace"), bad)
            else:
                yield Line(lineno, raw.decode(scan_.encoding))


def normalise(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower()


class Unreadable(NamedTuple):
    """A record that cannot be read as CSV: its first line, why, and its text."""

    line: int
    reason: str
    text: str


#: What the reader gives: ``(line, fields)`` of a record, or an unreadable one.
Record = tuple[int, list[str]] | Unreadable


@dataclass
class CsvRows:
    """The header and an iterator of records; a record's line is its first line."""

    header: list[str]
    separator: str
    rows: Iterator[Record]


def read_rows(scan_: FileScan, separator: str | None = None) -> CsvRows:
    """Open the file for parsing: detect the separator from the header, normalise column names."""
    lines = _decoded_lines(scan_)
    first = next(lines, Line(1, "")).text
    if separator is None:
        separator = ";" if first.count(";") >= first.count(",") else ","
    header = [normalise(h) for h in next(csv.reader([first], delimiter=separator))]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InputFileError(Problem(str(scan_.path), 1, None, f"duplicate columns: {dupes}"))
    return CsvRows(header, separator, _records(lines, separator))


def _open_after(text: str, separator: str, quoted: bool) -> bool:
    """Whether a quoted field is still open at the end of ``text`` (one line), given whether one
    was open at its start; the rules of ``csv.reader`` with ``strict=False``."""
    i, n = 0, len(text)
    start = not quoted  # at the start of a field
    while i < n:
        if quoted:
            j = text.find('"', i)
            if j < 0:
                return True
            if text.startswith('"', j + 1):  # a doubled quote: a quote character in the field
                i = j + 2
                continue
            quoted, start, i = False, False, j + 1
        elif start and text[i] == '"':
            quoted, start, i = True, False, i + 1
        else:
            j = text.find(separator, i)
            if j < 0:
                return False
            start, i = True, j + 1
    return quoted


class _Open(NamedTuple):
    """The lines, from the first of a record still open, that end an input read not to its end."""

    lines: list[Line]


def _spans(lines: Iterator[Line], separator: str, final: bool = True
           ) -> Iterator[Unreadable | list[Line] | _Open]:
    """The lines grouped into records: a list of lines per record, or an unreadable line.

    Args:
        lines: the physical lines, in order.
        separator: the CSV separator.
        final: whether ``lines`` runs to the end of the file; if not, a record still open at
            the end (and within ``MAX_RECORD_LINES``) comes last as ``_Open``.
    """
    again: deque[Line] = deque()  # lines to read again after an unbalanced quote

    def following() -> Line | None:
        return again.popleft() if again else next(lines, None)

    while (line := following()) is not None:
        if line.bad is not None:
            yield Unreadable(line.number, line.bad, line.text)
            continue
        if '"' not in line.text or not _open_after(line.text, separator, False):
            yield [line]
            continue
        taken, still_open = [line], True
        while still_open and len(taken) < MAX_RECORD_LINES:
            more = following()
            if more is None or more.bad is not None:
                if more is not None:
                    again.appendleft(more)
                break
            taken.append(more)
            still_open = _open_after(more.text, separator, True)
        if not still_open:
            yield taken
            continue
        if not final and len(taken) < MAX_RECORD_LINES and not again:
            yield _Open(taken)
            return
        again.extendleft(reversed(taken[1:]))
        yield Unreadable(line.number, "a quote opened in this line is not closed within "
                                      f"{MAX_RECORD_LINES} lines", line.text)


def parse_record(line: int, text: str, separator: str) -> Record | None:
    """One record's text (its line breaks included) as fields; None for a blank record."""
    try:
        fields = next(csv.reader([text], delimiter=separator, strict=False), [])
    except csv.Error as exc:
        message = str(exc)
        if "new-line" in message:
            reason = "a line break (CR) inside an unquoted field: quote the field or remove it"
        elif "field limit" in message:
            reason = f"a field is longer than {csv.field_size_limit():,} characters"
        else:
            reason = f"not a CSV record: {message}"
        return Unreadable(line, reason, text)
    if fields and any(f.strip() for f in fields):
        return line, fields
    return None


def _records(lines: Iterator[Line], separator: str) -> Iterator[Record]:
    for span in _spans(lines, separator):
        if isinstance(span, Unreadable):
            yield span
        elif isinstance(span, list):
            record = parse_record(span[0].number, "".join(x.text for x in span), separator)
            if record is not None:
                yield record


def _lines_of(text: str, first_line: int) -> Iterator[Line]:
    """The lines of decoded text, each with its line break (lines end at "\n" only)."""
    parts = text.split("\n")
    last = len(parts) - 1
    for i, part in enumerate(parts):
        if i < last:
            yield Line(first_line + i, part + "\n")
        elif part:
            yield Line(first_line + i, part)


@dataclass
class Block:
    """Whole data lines of a file, decoded: the first one is ``first_line``."""

    first_line: int
    text: str


#: Bytes read per block, encounters and decisions alike: bounds the memory in flight (a block being
#: prepared, one being written) whatever the file size. Since a framed block is one query, larger
#: blocks no longer pay back; smaller ones start the writer sooner and keep less in memory
#: (docs/decisions.md: "Encounters read in 2 MB blocks").
BLOCK_BYTES = 2 << 20
#: The first block is smaller, so that writing starts while the next ones are prepared.
FIRST_BLOCK_BYTES = 256 << 10


def blocks(scan_: FileScan, size: int | None = None, *, block_bytes: int | None = None,
           separator: str = ";") -> Iterator[Block]:
    """The data lines (after the header) in blocks of whole records, streaming.

    A block never ends inside a record: one whose last record is still open (a quoted field
    holding line breaks) is extended line by line until ``records`` would close it or give up on
    it, so both cut the file alike. Only for files without bad lines (``scan_.bad_lines``
    empty), which decode as a whole.

    Args:
        scan_: the file's scan.
        size: the bytes read for every block, the first one included.
        block_bytes: the bytes read for the blocks after the first (``BLOCK_BYTES`` if None).
        separator: the file's CSV separator.
    """
    if scan_.bad_lines:
        raise ValueError("blocks() needs a file that decodes as a whole")
    with scan_.path.open("rb") as handle:
        handle.readline()  # the header
        line = 2
        rest = b""
        later = size or block_bytes or BLOCK_BYTES
        step = size or min(FIRST_BLOCK_BYTES, later)
        while True:
            data = handle.read(step)
            step = later
            chunk = rest + data
            if not data:
                if chunk:
                    yield Block(line, chunk.decode(scan_.encoding))
                return
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                rest = chunk
                continue
            body, rest = chunk[:cut], chunk[cut:]
            if b'"' in body:  # 'in' is a memchr
                body, rest = _whole_records(body, rest, handle, line, scan_.encoding, separator)
            yield Block(line, body.decode(scan_.encoding))
            line += body.count(b"\n")


def _whole_records(body: bytes, rest: bytes, handle: Any, first_line: int, encoding: str,
                   separator: str) -> tuple[bytes, bytes]:
    """``body`` (whole lines) extended with the lines that close its last record, if open; the
    lines read for it come from ``rest`` first, then ``handle``."""
    tail = None
    for span in _spans(_lines_of(body.decode(encoding), first_line), separator, final=False):
        tail = span
    while isinstance(tail, _Open):
        end = rest.find(b"\n") + 1
        if end:
            more, rest = rest[:end], rest[end:]
        else:
            more, rest = rest + handle.readline(), b""
        if not more:
            break
        body += more
        lines = tail.lines
        text = "".join(x.text for x in lines) + more.decode(encoding)
        tail = None
        for span in _spans(_lines_of(text, lines[0].number), separator,
                           final=not more.endswith(b"\n")):
            tail = span
    return body, rest


def records(text: str, first_line: int, separator: str) -> Iterator[Record]:
    """The records in ``text`` (a block), numbered as ``read_rows`` does."""
    return _records(_lines_of(text, first_line), separator)
