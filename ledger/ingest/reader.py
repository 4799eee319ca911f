"""Reading an export file: encoding, separator, header, and rows with their line numbers.

A first pass hashes the file and decides its encoding line by line: UTF-8 (with or without BOM) or
Windows-1252. A UTF-8 file with a few lines that are not UTF-8 keeps its good lines; the bad ones
are reported by line (as ``bad_lines``) so the rows they belong to can be quarantined, not lost.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ledger.errors import InputFileError, Problem

ENCODINGS = ("utf-8", "cp1252")
BAD_LINE_MARK = "\x00claims-bad-encoding\x00"


@dataclass
class FileScan:
    """What the first pass learned about a file."""

    path: Path
    sha256: str
    encoding: str
    bom: bool
    bad_lines: set[int] = field(default_factory=set)
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
            if b"\x00" in raw or (lines == 1 and raw[:2] in (b"\xff\xfe", b"\xfe\xff")):
                raise InputFileError(
                    Problem(name, lines, None,
                            "file is neither UTF-8 nor Windows-1252 (NUL bytes: UTF-16 or binary?)")
                )
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
        return FileScan(path, sha, encoding, bom, bad, lines)
    if utf8_bad and utf8_ok_nonascii == 0:
        if cp1252_bad:
            raise InputFileError(
                Problem(name, min(utf8_bad), None, "file is neither UTF-8 nor Windows-1252")
            )
        return FileScan(path, sha, "cp1252", bom, set(), lines)
    return FileScan(path, sha, "utf-8", bom, utf8_bad, lines)


def _decoded_lines(scan_: FileScan) -> Iterator[str]:
    with scan_.path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if lineno == 1 and scan_.bom:
                raw = raw[3:]
            if lineno in scan_.bad_lines:
                yield BAD_LINE_MARK + raw.decode("cp1252", errors="replace")
            else:
                yield raw.decode(scan_.encoding)


def normalise(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower()


@dataclass
class CsvRows:
    """The header and an iterator of ``(line, fields)``; ``line`` is the record's first line."""

    header: list[str]
    separator: str
    rows: Iterator[tuple[int, list[str]]]


def read_rows(scan_: FileScan, separator: str | None = None) -> CsvRows:
    """Open the file for parsing: detect the separator from the header, normalise column names."""
    lines = _decoded_lines(scan_)
    first = next(lines, "")
    if separator is None:
        separator = ";" if first.count(";") >= first.count(",") else ","
    header = [normalise(h) for h in next(csv.reader([first], delimiter=separator))]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InputFileError(Problem(str(scan_.path), 1, None, f"duplicate columns: {dupes}"))

    def rows() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(lines, delimiter=separator, strict=False)
        start = 2
        for fields in reader:
            end = reader.line_num + 1  # +1: the header line was consumed before the reader
            if fields and any(f.strip() for f in fields):
                yield start, fields
            start = end + 1

    return CsvRows(header, separator, rows())


@dataclass
class Block:
    """Whole data lines of a file, decoded: the first one is ``first_line``."""

    first_line: int
    text: str


#: Bytes read per block (~17 thousand encounters or ~45 thousand decisions of a canonical export):
#: bounds the memory in flight (a block being prepared, one being written) whatever the file size.
#: Encounters were read in blocks twice as large while DuckDB planned five statements a block
#: (~25 ms whatever the rows); since a framed block is one query, 2 MB blocks cost ~1-3% more
#: CPU to prepare than 4 MB (1 M encounters prepared alone, two alternated pairs: 7.83-7.97 s
#: against 7.56-7.90 s), start the writer sooner and keep less in memory: 1 M encounters, peak
#: RSS 238 MB against 334 MB; 200 k encounters, four alternated pairs, 2.35-2.83 s against
#: 2.60-3.12 s (each pair faster); 1 M, three pairs, 13.5-14.7 s against 11.3-15.6 s.
BLOCK_BYTES = 2 << 20
#: The first block is smaller, so that writing starts while the next ones are prepared.
FIRST_BLOCK_BYTES = 256 << 10


def blocks(scan_: FileScan, size: int | None = None, *, block_bytes: int | None = None
           ) -> Iterator[Block]:
    """The data lines (after the header) in blocks of whole records, streaming.

    A block never ends inside a quoted field: it is extended line by line until its quotes
    balance, so a record spanning lines stays in one block. Only for files without bad lines
    (``scan_.bad_lines`` empty), which decode as a whole.

    Args:
        scan_: the file's scan.
        size: the bytes read for every block, the first one included.
        block_bytes: the bytes read for the blocks after the first (``BLOCK_BYTES`` if None).
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
            quotes = body.count(b'"') if b'"' in body else 0  # 'in' is a memchr
            while quotes % 2:
                more = rest + handle.readline()
                rest = b""
                if not more.endswith(b"\n"):
                    body += more
                    break
                body += more
                quotes += more.count(b'"')
            yield Block(line, body.decode(scan_.encoding))
            line += body.count(b"\n")


def records(text: str, first_line: int, separator: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` of the CSV records in ``text``, numbered as ``read_rows`` does."""
    parts = text.split("\n")  # as the file is read: lines end at "\n" only
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    reader = csv.reader(lines, delimiter=separator, strict=False)
    start = first_line
    for fields in reader:
        end = first_line + reader.line_num - 1
        if fields and any(f.strip() for f in fields):
            yield start, fields
        start = end + 1
