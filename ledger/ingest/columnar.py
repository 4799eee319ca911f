"""The ingest's fast path: DuckDB parses, validates, pseudonymises and encodes a block of rows at once.

It is an accelerator, not a second parser. A row is taken here only when the whole line is in the
plain shape of the canonical export: one regular expression per file checks every cell (text
without quotes, backslashes or control characters; naive times; plain decimals, codes and flags),
then a few checks follow (real calendar days, Paris times outside the DST change hours, birth year
range, the checks across columns). Any other row, good or bad, is handed back with its text to the
row-by-row preparer (``prepare.prepare``), which alone writes the messages of bad rows.

For the rows it takes, the fast path gives the same bytes as the row-by-row path: the aggregate id
(uuid5), the patient pseudonym (HMAC-SHA256), the facts or decision JSON and its SHA-256, and the
whole ``Recorded`` or ``Decided`` event state (``tests/unit/test_columnar.py`` asserts it on
generated rows). Corrections and voids are rare and keep the row-by-row event builders. (A framed
block leaves its hashes as zeros for ``ledger.hashing``'s native loops: the ids, the pseudonyms
and the decisions' digests are filled in by ``BlockPreparer._framed``, the facts' digests by the
writer's thread, see ``PendingDigests``.)

A block whose rows were all taken (bad rows aside), ids distinct, comes back ``Framed``: each
``Recorded`` or ``Decided`` state framed as a binary COPY row (``store.frame_states``).
When the ledger's state allows (encounters: none known yet; decisions: always, leaving out the rows
of unknown encounters and the decisions already recorded), the writer appends the rows as they
are, filling in versions, positions and chain links over whole arrays
(``EventWriter.append_framed``): no Python object per row.

Why DuckDB: its vectorised string, regex and hash functions do in C++ what costs ~50 µs a row in
Python, and they run without the GIL, so the next block is prepared in a background thread while
the main thread writes the previous one to PostgreSQL.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, NamedTuple
from uuid import UUID

import duckdb
import numpy as np
import orjson
from eventsourcing.utils import get_topic

from ledger import domain, hashing, lookups, pseudonym, store
from ledger.ingest import prepare, reader
from ledger.ingest.values import INVISIBLE_RANGES, ParisYear, paris_years

_NOT_TEXT = r"\x00-\x20\"\\\x7f"
#: Characters ``str.strip`` removes besides the ASCII ones (a text cell must not start or end
#: with one, and we keep them out of cells altogether so that DuckDB's ``trim`` agrees).
_UNICODE_SPACES = r"\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
#: The invisible characters ``values.parse_text`` refuses: such a line goes row by row.
_INVISIBLE = "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in INVISIBLE_RANGES)
# Years 20xx only (``values.FIRST_YEAR``-``LAST_YEAR``); RE2's \d is ASCII only, as ``values``'.
_DATETIME = r"(20\d{2}-\d{2}-\d{2}|\d{2}/\d{2}/20\d{2})[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?"
_DATE = r"(20\d{2}-\d{2}-\d{2}|\d{2}/\d{2}/20\d{2})"
_CODE = r"[A-Za-z][A-Za-z0-9]{0,7}"
_FLAG = r"((?i)0|1|false|true|non|oui|n|o|no|yes|y)?"
FLAGS_TRUE = ("1", "true", "oui", "o", "yes", "y")
#: Longer lines are left to the row-by-row path (whose CSV reader bounds a field's length).
MAX_LINE_BYTES = 65536


def _shapes(separator: str) -> dict[str, str]:
    """Each column's cell pattern (spaces around the value allowed, as ``strip`` removes them)."""
    sep = _re_escape(separator)
    word = rf"[^{_NOT_TEXT}{sep}{_UNICODE_SPACES}{_INVISIBLE}]"
    text, optional_text = rf" *{word}( *{word})* *", rf"( *{word})* *"
    codes = rf"{_CODE}( *\+ *{_CODE})*"
    money = r" *\d{1,9}([.,]\d{1,2})? *"
    return {
        "association": r" *[A-Za-z0-9][A-Za-z0-9_-]{0,31} *",
        "encounter_ref": text,
        "regulation_origin": r" *((?i)SAS|SOS|C15|NONE) *",
        "regulated_at": rf" *({_DATETIME})? *",
        "performed_at": rf" *{_DATETIME} *",
        "act": r" *((?i)consultation|visit) *",
        "patient_ref": text,
        "patient_birth_year": r" *(\d{4})? *",
        "doctor_rpps": r" *\d{11} *",
        "treating_doctor": rf" *{_FLAG} *",
        "pdsa": rf" *{_FLAG} *",
        "billed_codes": rf" *{codes} *",
        "billed_amount": money,
        "invoice_ref": optional_text,
        "status": r" *((?i)active|void)? *",
        "decided_at": rf" *{_DATE} *",
        "paid_amount": money,
        "paid_codes": rf" *({codes})? *",
        "rejected_codes": rf" *({codes})? *",
        "reason": optional_text,
    }


def _re_escape(char: str) -> str:
    return "\\" + char if not char.isalnum() else char


def _q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


class Taken(NamedTuple):
    """A row the fast path took: what the pipeline needs from it, in as few columns as it can."""

    line: int
    oid: bytes               # the aggregate id, 16 bytes
    state: bytes             # the Recorded (encounters) or Decided (decisions) event state
    state_sha: bytes         # its SHA-256 (for the hash chain; hashlib beats DuckDB's sha256)
    sha: str | None = None   # SHA-256 of the decision JSON (decisions only: for repeats)
    ref: str | None = None   # "ASSOCIATION/REF" (decisions only: for messages)

    def good(self) -> prepare.Good:
        """The row as the row-by-row preparer gives it (for corrections, repeats, messages)."""
        data = orjson.loads(self.state)
        if "facts" in data:
            payload, sha = data["facts"], data["facts_sha256"]
            ref = f"{payload['association']}/{payload['encounter_ref']}"
        else:
            payload, sha, ref = data["decision"], data["decision_sha256"], self.ref or ""
        text = orjson.dumps(payload).decode("utf-8")
        return prepare.Good(self.line, UUID(bytes=self.oid), ref, False, text, sha,
                            data["effective_at"], {})


class Framed:
    """A block whose rows the fast path took, ids all distinct, but for bad rows: the taken rows'
    events already framed as COPY rows (``store.frame_states``: ``Recorded`` for encounters,
    ``Decided`` for decisions), for the writer to append as they are when the ledger's state
    allows (encounters: none known yet; decisions: always, see ``pipeline``).

    Args:
        topic: the rows' topic.
        lines: the line of each framed row (int64).
        rows: the COPY rows, one after the other.
        ends: the offset just past each row (int64).
        bad: the block's bad rows, for the quarantine.
        shas: decisions: each decision's SHA-256 (``Taken.sha``).
        refs: decisions: each row's "ASSOCIATION/REF" (``Taken.ref``).
        digests: encounters: where each payload starts and ends in ``rows``, its SHA-256 left
            to fill in (``PendingDigests``): by the writer, a slice at a time as it sends them
            (``incomplete``), or all at once when ``rows`` is first read.
    """

    def __init__(self, topic: str, lines: np.ndarray, rows: bytearray, ends: np.ndarray,
                 bad: list[prepare.Bad], shas: np.ndarray | None = None,
                 refs: np.ndarray | None = None, digests: PendingDigests | None = None):
        self.topic, self.lines, self.ends, self.bad = topic, lines, ends, bad
        self.shas, self.refs = shas, refs
        self._rows, self._digests = rows, digests

    @cached_property
    def ids(self) -> lookups.Ids:
        """The rows' ids, for a lookup (made by the first thread that asks)."""
        return lookups.Ids(store.framed_id_bytes(self._rows, self.ends))

    @property
    def rows(self) -> bytearray:
        """The COPY rows, complete."""
        if self._digests is not None:
            self._digests.fill(self._rows)
            self._digests = None
        return self._rows

    def incomplete(self) -> tuple[bytearray, Callable[[bytearray, int, int], None] | None]:
        """The COPY rows as they are, and what completes a slice of them in place
        (``EventWriter.append_framed``'s ``complete``), None if they are complete. Completing
        twice gives the same bytes, so ``rows`` may still be read after a write that failed."""
        return self._rows, None if self._digests is None else self._digests.fill

    def __len__(self) -> int:
        return len(self.lines) + len(self.bad)

    def prepared(self) -> list[Taken | prepare.Bad]:
        """The block's rows one by one, in line order, for the pipeline's general path."""
        sha256 = hashlib.sha256
        events = store.framed_events(self.rows, self.ends, self.topic)
        lines = self.lines.tolist()
        taken: list[Taken | prepare.Bad]
        if self.shas is None or self.refs is None:
            taken = [Taken(line, oid, state, sha256(state).digest())
                     for line, (oid, state) in zip(lines, events, strict=True)]
        else:
            taken = [Taken(line, oid, state, sha256(state).digest(), sha, ref)
                     for line, (oid, state), sha, ref in zip(
                         lines, events, self.shas.tolist(), self.refs.tolist(), strict=True)]
        bad: list[Taken | prepare.Bad] = list(self.bad)
        return list(heapq.merge(taken, bad, key=lambda r: r.line))


RECORDED = get_topic(domain.Encounter.Recorded)
DECIDED = get_topic(domain.Encounter.Decided)


class BlockPreparer:
    """Prepares blocks of lines of one file (its header, separator and constants fixed).

    Args:
        ctx: the file's row context (kind, header, separator, pseudonymisation key).
        created_prefix: the constant head of a ``Recorded`` state (timestamp, topic, actor).
        head_prefix: the constant head of a later event's state (timestamp, actor).
        provenance: the provenance JSON before and after the line number.
    """

    def __init__(self, ctx: prepare.RowContext, created_prefix: str, head_prefix: str,
                 provenance: tuple[str, str]):
        self.ctx = ctx
        # 64 MB holds a block's tables; more lets DuckDB's allocator keep memory it no longer
        # uses, and the ingest's peak RSS then grows with the file (1M / 100k encounters:
        # 1.15-1.31x with 128 MB, 1.08-1.12x with 64 MB).
        self.db = duckdb.connect(config={"threads": 1, "memory_limit": "64MB"})
        self.db.execute(_paris_offset_macro())
        ipad, opad = pseudonym.hmac_pads(ctx.key)
        params: dict[str, Any] = {
            "ns": domain.NAMESPACE.bytes,
            "ipad": ipad,
            "opad": opad,
            "created": created_prefix,
            "head": head_prefix,
            "prov_before": provenance[0],
            "prov_after": provenance[1],
        }
        encounters = ctx.kind == "encounters"
        kind_sql = _encounters_sql if encounters else _decisions_sql
        stages, self.taken_sql = kind_sql(ctx)
        self.topic = RECORDED if encounters else DECIDED
        # A framed block's ids, pseudonyms and payload digests are left as zeros for ``hashing``
        # to fill in (``_framed``, ``PendingDigests``).
        self.state_prefix = created_prefix if encounters else head_prefix
        (lines_name, lines), (encoded_name, encoded) = stages
        # The framed rows straight from the text: neither the lines nor the encoded rows are
        # stored first (a block that cannot be framed takes the stored way, ``b_lines`` and
        # ``b_encoded``). Storing them cost more in the kernel than in DuckDB (fresh pages for
        # each block's tables): 1 M encounters prepared alone, two alternated pairs, 8.7-8.8 µs
        # a row (0.33-0.35 s in the kernel) against 10.0-10.5 (1.44 s); 1 M decisions, 4.7
        # against 5.6 (0.17 s in the kernel against 0.64).
        pending_encoded = kind_sql(ctx, pending=True)[0][1][1]
        direct = f"({pending_encoded.replace(f'FROM {lines_name}', f'FROM ({lines})')})"
        field, prefix, carried = (("facts", "$created", "patient") if encounters
                                  else ("decision", "$head", "ref"))
        framed_taken = _taken_sql(field, prefix, f"{_DIGEST_COLUMNS}, name, {carried}",
                                  _DIGEST_PLACEHOLDER, direct)
        self.framed_sql = (f"SELECT line, state, name, payload_size, effective_size, {carried} "
                           f"FROM ({framed_taken})")
        self.lines_stage = f"CREATE OR REPLACE TEMP TABLE {lines_name} AS {lines}"
        self.encoded_stage = f"CREATE OR REPLACE TEMP TABLE {encoded_name} AS {encoded}"
        self.framed_params, self.encoded_params, self.taken_params = (
            {k: v for k, v in params.items() if f"${k}" in sql}
            for sql in (self.framed_sql, encoded, self.taken_sql))

    def close(self) -> None:
        self.db.close()

    def __call__(self, text: str, first_line: int
                 ) -> Framed | list[Taken | prepare.Good | prepare.Bad]:
        """Prepared rows of ``text`` (whole lines, no quote character), the first at ``first_line``.

        Blank rows are skipped, as the reader does; rows the fast path does not take are prepared
        row by row, in their place. A block whose rows are all taken (bad rows aside), ids
        distinct, comes ``Framed``.
        """
        position = {"text": text, "base": first_line}
        framed = self.db.execute(self.framed_sql, {**self.framed_params, **position}).fetchnumpy()
        lines = framed["line"]
        # The lines the framed rows leave out (rare: bad rows, blank lines) are found among the
        # block's lines, stored for them, and prepared row by row.
        stored = len(lines) != text.count("\n") + (not text.endswith("\n"))
        others = self._left_out(position, lines) if stored else []
        bad = [r for r in others if isinstance(r, prepare.Bad)]
        if len(bad) == len(others):
            block = self._framed(framed, bad)
            # Its ids, checked distinct, are made here: decisions are all looked up, and this
            # thread has time to spare while the server stores the block before.
            if len(np.unique(np.frombuffer(block.ids, "V16"))) == len(lines):
                return block
        # The stored way, for a block with a repeated id or a left-out row that is not bad.
        if not stored:
            self.db.execute(self.lines_stage, position)
        self.db.execute(self.encoded_stage, self.encoded_params)
        # Both results keep the block's line order (DuckDB preserves insertion order).
        sha256 = hashlib.sha256
        taken: list[Taken | prepare.Good | prepare.Bad] = [
            Taken(row[0], row[1], row[2], sha256(row[2]).digest(), *row[3:])
            for row in self.db.execute(self.taken_sql, self.taken_params).fetchall()]
        if not others:
            return taken
        return list(heapq.merge(taken, others, key=lambda r: r.line))

    def _left_out(self, position: dict[str, Any], taken: np.ndarray
                  ) -> list[Taken | prepare.Good | prepare.Bad]:
        """The block's lines not among ``taken``, prepared row by row, in line order (the
        block's lines stored as ``b_lines``)."""
        self.db.execute(self.lines_stage, position)
        every = self.db.execute("SELECT line FROM b_lines").fetchnumpy()["line"]
        return self._prepared(self.db.execute(
            "SELECT line, raw FROM b_lines WHERE list_contains($left, line) ORDER BY line",
            {"left": np.setdiff1d(every, taken).tolist()}).fetchall())

    def _framed(self, framed: dict[str, np.ndarray], bad: list[prepare.Bad]) -> Framed:
        """The block of the framing query's result (``framed_sql``), with its bad rows."""
        rows, ends = store.frame_states(framed["state"], self.topic)
        hashing.fill_uuid5(rows, store.framed_id_offsets(ends), domain.NAMESPACE,
                           _ID_PREFIX.encode(), *_joined(framed["name"]))
        digests = PendingDigests.of(self.state_prefix, self.topic == RECORDED,
                                    store.framed_state_spans(ends, self.topic)[0],
                                    framed["payload_size"], framed["effective_size"])
        if self.topic == DECIDED:
            # Decisions: the digests now, as they are compared with those recorded.
            digests.fill(rows)
            return Framed(self.topic, framed["line"], rows, ends, bad, digests.hexes(rows),
                          framed["ref"])
        # Encounters: the pseudonyms now, while the identifiers are at hand; the digests as the
        # rows are sent.
        hashing.fill_pseudonyms(rows, digests.starts, digests.ends, _PSEUDONYM_MARKER,
                                *_joined(framed["patient"]), self.ctx.key)
        return Framed(self.topic, framed["line"], rows, ends, bad, digests=digests)

    def _prepared(self, handed_back: list[tuple[int, str]]
                  ) -> list[Taken | prepare.Good | prepare.Bad]:
        """Lines the fast path did not take, prepared row by row (blank ones skipped)."""
        others: list[Taken | prepare.Good | prepare.Bad] = []
        for line, raw in handed_back:
            record = reader.parse_record(line, raw + "\n", self.ctx.separator)
            if record is not None:
                others.extend(prepare.prepare(self.ctx, [record]))
        return others


def _joined(blobs: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Byte strings one after the other, and where each ends."""
    return b"".join(blobs), np.cumsum(np.fromiter(map(len, blobs), np.int64, len(blobs)))


def _paris_offset_macro() -> str:
    """``paris_offset(local, year)``: the offset of a naive ISO time, NULL in a DST change hour.

    ISO texts of one width compare as times do, so the year's boundaries are compared as text.
    """
    known = {y.year: y for y in paris_years()}
    first, last = min(known), max(known)
    # A year left out by paris_years() (no usual pair of changes) gets NULLs: its rows go to the
    # row-by-row path, which knows every year.
    years = [known.get(year) for year in range(first, last + 1)]

    def column(pick: Callable[[ParisYear], str]) -> str:
        return "[" + ", ".join("NULL" if y is None else _q(pick(y)) for y in years) + "]"

    def offset(pick: Callable[[ParisYear], str]) -> str:
        """An offset by year; one literal when every year has the same (Paris since 1976: the
        years' boundaries alone differ, and a list lookup costs ~0.2 µs a row)."""
        found = {pick(y) for y in years if y is not None}
        return _q(found.pop()) if len(found) == 1 else f"{column(pick)}[year - {first - 1}]"

    gap_start = column(lambda y: y.gap_start.isoformat())
    gap_end = column(lambda y: y.gap_end.isoformat())
    overlap_start = column(lambda y: y.overlap_start.isoformat())
    overlap_end = column(lambda y: y.overlap_end.isoformat())
    return f"""
    CREATE TEMP MACRO paris_offset(local, year) AS (
        CASE WHEN year - {first - 1} NOT BETWEEN 1 AND {len(years)} THEN NULL
        WHEN local < {gap_start}[year - {first - 1}]
            THEN {offset(lambda y: y.before)}
        WHEN local >= {gap_end}[year - {first - 1}] AND local < {overlap_start}[year - {first - 1}]
            THEN {offset(lambda y: y.summer)}
        WHEN local >= {overlap_end}[year - {first - 1}]
            THEN {offset(lambda y: y.after)}
        END)"""


def _stages(ctx: prepare.RowContext, columns: Sequence[str]) -> tuple[tuple[str, str], str]:
    """What either kind starts with: the stage of the block's numbered lines matched against the
    file's line shape (``b_lines``), and the query of the trimmed cells of the lines that match
    (a subquery of the kind's ``b_encoded``: a table per step costs ~9% more CPU)."""
    shapes = _shapes(ctx.separator)
    line_shape = _re_escape(ctx.separator).join(shapes[c] for c in ctx.header) + "\r?"
    blank = f"[ {_re_escape(ctx.separator)}]*\r?"
    position = {name: i + 1 for i, name in enumerate(ctx.header)}
    cells = {c: (f"{'upper' if c == 'association' else ''}(f[{position[c]}])"
                 if c in position else "''") for c in columns}
    lines = f"""
        SELECT line, raw, strlen(raw) <= {MAX_LINE_BYTES} AND regexp_full_match(raw, {_q(line_shape)})
                          AS ok
        FROM (SELECT unnest(l) AS raw,
                     CAST(generate_subscripts(l, 1) + $base - 1 AS BIGINT) AS line
              FROM (SELECT string_split($text, chr(10)) AS l))
        WHERE NOT regexp_full_match(raw, {_q(blank)})"""
    # The cells, trimmed: the line's shape admits no space around a cell but ' ', so only a line
    # with ' ' beside a separator or at an end needs more than a split (the split and 14 trims
    # took ~2.1 µs a row, this ~1.6). ``rtrim`` decodes the whole line's UTF-8 (~0.65 µs a
    # line): only a line that ends with CR goes through it.
    split = f"""(SELECT line, CASE
            WHEN contains(r, {_q(' ' + ctx.separator)}) OR contains(r, {_q(ctx.separator + ' ')})
                OR starts_with(r, ' ') OR ends_with(r, ' ')
            THEN regexp_split_to_array(trim(r), {_q(' *' + _re_escape(ctx.separator) + ' *')})
            ELSE string_split(r, {_q(ctx.separator)}) END AS f
        FROM (SELECT line, CASE WHEN ends_with(raw, chr(13)) THEN rtrim(raw, chr(13)) ELSE raw END
                         AS r FROM b_lines WHERE ok))"""
    select = ", ".join(f"{expr} AS {c}" for c, expr in cells.items())
    return ("b_lines", lines), f"SELECT line, {select} FROM {split}"


#: The shapes a date-time cell may have (the line's shape admits no other), the canonical first.
_DATETIME_FORMATS = [f"{day}{sep}%H:%M{seconds}" for seconds in ("", ":%S")
                     for day in ("%d/%m/%Y", "%Y-%m-%d") for sep in (" ", "T")]
_DATE_FORMATS = ["%d/%m/%Y", "%Y-%m-%d"]


def _parsed(cell: str, formats: Sequence[str]) -> str:
    """A trimmed date or date-time cell as a DuckDB DATE or TIMESTAMP, NULL if it is empty or
    not a real day (its shape already checked). One ``strptime`` in place of slicing the text:
    DuckDB's ``substr`` decodes UTF-8 as it goes (~190 instructions a call, ~10 a cell)."""
    listed = "[" + ", ".join(_q(f) for f in formats) + "]"
    return f"CASE WHEN {cell} = '' THEN NULL ELSE try_strptime({cell}, {listed}) END"


def _instant(ts: str, offset: str) -> str:
    """The UTC instant of a naive timestamp and its offset text ('+02:00')."""
    return (f"{ts} - to_minutes(CAST(substr({offset}, 1, 3) AS INT) * 60 "
            f"+ CAST(substr({offset}, 5, 2) AS INT))")


def _money(cell: str) -> str:
    return f"CAST(try_cast(replace({cell}, ',', '.') AS DECIMAL(18, 2)) AS VARCHAR)"


def _codes_json(cell: str) -> str:
    return (f"""CASE WHEN {cell} = '' THEN '[]' ELSE """
            f"""concat('["', replace(upper(replace({cell}, ' ', '')), '+', '","'), '"]') END""")


def _concat(*parts: str) -> str:
    """One ``concat`` call: DuckDB's ``||`` copies the growing string at every step."""
    return f"concat({', '.join(parts)})"


def _json_fields(fields: Sequence[tuple[str, str, bool]]) -> str:
    """A JSON object from (key, SQL expression, quoted) in order, as one concat."""
    parts: list[str] = []
    for i, (key, expr, quoted) in enumerate(fields):
        lead = "{" if i == 0 else ","
        parts.append(_q(f'{lead}"{key}":' + ('"' if quoted else "")))
        parts.append(expr)
        if quoted:
            parts.append("'\"'")
    parts.append("'}'")
    return _concat(*parts)


def _nullable(expr: str) -> str:
    return f"""CASE WHEN {expr} = '' THEN 'null' ELSE concat('"', {expr}, '"') END"""


#: The facts' key of the patient's pseudonym; in a state, the first ``"patient_pseudonym":"``
#: is its key (a taken row's cells hold no quote character).
_PSEUDONYM_KEY = "patient_pseudonym"
_PSEUDONYM_MARKER = f'"{_PSEUDONYM_KEY}":"{pseudonym.PREFIX}'.encode()

#: The name hashed into an encounter's id (``domain.encounter_id``): this prefix, then the
#: rest, as a BLOB; and the id left as zeros for ``hashing.fill_uuid5``.
_ID_PREFIX = "encounter:"
_OID_NAME = "encode(concat(association, chr(31), encounter_ref))"
_PENDING_OID = f"unhex('{'00' * 16}') AS oid"


def _oid(h: str) -> str:
    """uuid5(NAMESPACE, "encounter:<association>\\x1f<ref>") as 16 bytes, as
    ``domain.encounter_id``, from ``h``, the SHA-1 (hex) of namespace and name: version 5 and
    the RFC 4122 variant set. (``h`` is a column of the query below: an expression in its place
    would be evaluated once per reference.)"""
    variant = f"substr('89ab89ab89ab89ab', strpos('0123456789abcdef', substr({h}, 17, 1)), 1)"
    return (f"unhex(concat(substr({h}, 1, 12), '5', substr({h}, 14, 3), {variant}, "
            f"substr({h}, 18, 15))) AS oid")


def _encoded(typed: str, checks: Sequence[str], payload: str, effective: str,
             pending: bool = False, carried: str = "") -> tuple[str, str]:
    """The stage of taken rows (``b_encoded``): id, facts or decision JSON, effective time, and
    the ``carried`` column if any (``expression AS name``), from the query of the typed cells.
    With ``pending``, the id is left as zeros and the row carries its name, as ``name``
    (``BlockPreparer._framed`` fills it in)."""
    ok = " AND ".join(f"({c})" for c in checks)
    inner = [f"{_OID_NAME} AS name" if pending
             else f"sha1($ns || encode({_q(_ID_PREFIX)}) || {_OID_NAME}) AS h"]
    outer = [_PENDING_OID if pending else _oid("h"), "ref", "payload", "effective"]
    if pending:
        outer.append("name")
    if carried:
        inner.append(carried)
        outer.append(carried.split()[-1])
    return "b_encoded", f"""
        SELECT line, {', '.join(outer)}
        FROM (SELECT line, {', '.join(inner)}, concat(association, '/', encounter_ref) AS ref,
                     {payload} AS payload, {effective} AS effective
              FROM ({typed}) WHERE coalesce({ok}, false))"""


class _StateKeys(NamedTuple):
    """What a taken row's state holds between its parts: prefix, effective time, payload, the
    payload's digest, provenance (``_taken_sql`` writes them, ``PendingDigests`` counts them)."""

    effective: str  # before the effective time
    payload: str    # before the payload
    digest: str     # before the payload's digest

    @classmethod
    def of(cls, field: str) -> _StateKeys:
        return cls(',"effective_at":"', f'","{field}":', f',"{field}_sha256":"')


def _taken_sql(field: str, prefix: str, extra: str, digest: str = "sha256(payload)",
               source: str = "b_encoded") -> str:
    """The taken rows of ``source`` (``b_encoded`` or its query) with their whole event state
    (``state``, a BLOB): the payload's SHA-256 as ``digest`` gives it (or a placeholder,
    ``PendingDigests``)."""
    keys = _StateKeys.of(field)
    state = _concat(prefix, _q(keys.effective), "effective", _q(keys.payload), "payload",
                    _q(keys.digest), digest, _q('","provenance":'),
                    "$prov_before", "CAST(line AS VARCHAR)", "$prov_after", "'}'")
    return f"SELECT line, oid, encode({state}) AS state{extra} FROM {source}"


#: What the framing query adds: each payload's size in bytes (``strlen``: bytes, not
#: characters), and its effective time's; and the placeholder of the payload's digest
#: (``PendingDigests``).
_DIGEST_COLUMNS = (", strlen(payload) AS payload_size, "
                   "strlen(effective) AS effective_size")
_DIGEST_PLACEHOLDER = "repeat('0', 64)"
_FACTS = _StateKeys.of("facts")
_DECISION = _StateKeys.of("decision")


class PendingDigests(NamedTuple):
    """The payloads' SHA-256 of framed rows, left by DuckDB as a placeholder.

    DuckDB's SHA-256 costs ~2.0 µs for a ~450-byte payload; Python's (OpenSSL, with the CPU's SHA
    instructions) ~1.0 µs with the loop around it, and it runs in the writer's thread, which has
    time to spare while DuckDB prepares the next block (rows of blocks that are not framed keep
    DuckDB's digest). 1 M encounters, three alternated runs: the preparing thread's CPU went from
    12.3-12.9 to 10.7-11.4 µs an event, the writer's from 2.9 to 3.8-4.2, the wall time from
    14.3-15.0 to 13.4-14.2 s. The pseudonyms' HMAC, moved the same way (~1.4 µs a row in Python
    against ~1.7 µs in DuckDB), made the writer's side the slower one: 1 M encounters, 4 MB
    blocks, four alternated pairs, 12.0-12.7 s against 10.9-11.9 s (writer 5.0-5.4 µs an event
    against 3.4-3.9, preparing thread 8.2-9.0 against 8.9-9.7). Not kept.

    Since DuckDB's part got faster the writer is the side waited for, so it fills the digests a
    slice at a time just before sending each slice, while the server stores the slice before
    (the server sat idle during a block's whole fill): 1 M encounters, six alternated pairs,
    10.3-12.9 s against 10.7-12.8 s (four pairs faster), the preparing thread's waits for the
    writer 1.15-1.23 s against 1.52-1.57 s (two pairs).

    The loops are now native (``ledger.hashing``: 0.42 µs a digest, without the GIL), as are
    the pseudonyms and the ids, filled in by the preparing thread (``BlockPreparer._framed``).
    Decisions' digests are filled there too, as the pipeline compares them with those recorded.
    """

    starts: np.ndarray  # where each payload starts in the rows
    ends: np.ndarray    # and ends; its digest's hex follows, after ``gap`` bytes
    gap: int

    @classmethod
    def of(cls, prefix: str, facts: bool, state_starts: np.ndarray, payload_sizes: np.ndarray,
           effective_sizes: np.ndarray) -> PendingDigests:
        """Where the payloads are, from where the states start, and the sizes of each state's
        payload and effective time (a state starts with ``prefix``, then the effective time,
        then the payload, facts or decision, as ``_taken_sql`` writes it)."""
        keys = _FACTS if facts else _DECISION
        starts = (state_starts + len(prefix.encode("utf-8")) + len(keys.effective)
                  + effective_sizes + len(keys.payload))
        return cls(starts, starts + payload_sizes, len(keys.digest))

    def fill(self, rows: bytearray, first: int = 0, last: int | None = None) -> None:
        """Write the digest of each payload of rows ``[first, last)`` (all by default) in place
        of its placeholder."""
        hashing.fill_hex_digests(rows, self.starts[first:last], self.ends[first:last],
                                 self.gap)

    def hexes(self, rows: bytearray) -> np.ndarray:
        """The digests' hex, as filled in (str)."""
        at = (self.ends + self.gap)[:, None] + np.arange(64)
        return np.frombuffer(rows, np.uint8)[at].view("S64")[:, 0].astype(str)


_ENCOUNTER_COLUMNS = ("association", "encounter_ref", "regulation_origin", "regulated_at",
                      "performed_at", "act", "patient_ref", "patient_birth_year", "doctor_rpps",
                      "treating_doctor", "pdsa", "billed_codes", "billed_amount", "invoice_ref",
                      "status")
_DECISION_COLUMNS = ("association", "encounter_ref", "decided_at", "paid_amount", "paid_codes",
                     "rejected_codes", "reason")


def _encounters_sql(ctx: prepare.RowContext, pending: bool = False
                    ) -> tuple[list[tuple[str, str]], str]:
    """The stages and the taken rows' query of encounters; with ``pending``, each id and each
    pseudonym's digits are left as zeros and the row carries their names, as ``name`` and
    ``patient`` (``BlockPreparer._framed`` fills them in)."""
    # The line's shape admits only the values of ``_FLAG`` in a flag's cell, and their first
    # letters tell true from false (``lower(x) IN (...)`` was a hash join: ~0.15 µs a row).
    true_initials = "".join(sorted({v[0] for v in FLAGS_TRUE} | {v[0].upper() for v in FLAGS_TRUE}))
    flags = {c: f"CASE WHEN {c} <> '' AND contains({_q(true_initials)}, left({c}, 1)) "
                "THEN 'true' ELSE 'false' END" for c in ("treating_doctor", "pdsa")}
    checks = (
        "regulated_at = '' OR reg_off IS NOT NULL",
        "perf_off IS NOT NULL",
        "patient_birth_year = '' OR try_cast(patient_birth_year AS INT) BETWEEN 1890 AND 2100",
        # The checks across columns (rows.py): an origin needs a time, no act before it.
        "upper(regulation_origin) = 'NONE' OR regulated_at <> ''",
        # (the same offset, most often: the local times compare as the instants do)
        f"regulated_at = '' OR CASE WHEN reg_off = perf_off THEN reg_ts <= perf_ts "
        f"ELSE {_instant('reg_ts', 'reg_off')} <= {_instant('perf_ts', 'perf_off')} END",
        "lower(status) <> 'void'",  # voids are rare: the row-by-row path builds them
    )
    pseudonym_sql = (_q(pseudonym.PREFIX + "0" * pseudonym.HEX_DIGITS) if pending else
                     f"concat({_q(pseudonym.PREFIX)}, left(sha256($opad || "
                     f"unhex(sha256($ipad || encode(patient_ref)))), {pseudonym.HEX_DIGITS}))")
    payload = _json_fields((
        ("association", "association", True),
        ("encounter_ref", "encounter_ref", True),
        ("regulation_origin", "upper(regulation_origin)", True),
        ("regulated_at", "CASE WHEN reg_local IS NULL THEN 'null' "
                         "ELSE concat('\"', reg_local, reg_off, '\"') END", False),
        ("performed_at", "concat(perf_local, perf_off)", True),
        ("act", "lower(act)", True),
        (_PSEUDONYM_KEY, pseudonym_sql, True),
        ("patient_birth_year",
         "coalesce(CAST(try_cast(nullif(patient_birth_year, '') AS INT) AS VARCHAR), 'null')",
         False),
        ("doctor_rpps", "doctor_rpps", True),
        ("treating_doctor", flags["treating_doctor"], False),
        ("pdsa", flags["pdsa"], False),
        ("billed_codes", _codes_json("billed_codes"), False),
        ("billed_amount", _money("billed_amount"), True),
        ("invoice_ref", _nullable("invoice_ref"), False),
    ))
    lines, cells = _stages(ctx, _ENCOUNTER_COLUMNS)
    iso = _q("%Y-%m-%dT%H:%M:%S")
    typed = f"""
            SELECT *, paris_offset(reg_local, year(reg_ts)) AS reg_off,
                   paris_offset(perf_local, year(perf_ts)) AS perf_off
            FROM (SELECT *, strftime(reg_ts, {iso}) AS reg_local,
                         strftime(perf_ts, {iso}) AS perf_local
                  FROM (SELECT *, {_parsed('regulated_at', _DATETIME_FORMATS)} AS reg_ts,
                               {_parsed('performed_at', _DATETIME_FORMATS)} AS perf_ts
                        FROM ({cells})))"""
    encoded = _encoded(
        typed, (*checks, "regulated_at = '' OR reg_ts IS NOT NULL", "perf_ts IS NOT NULL"),
        payload, "concat(perf_local, perf_off)",
        pending, "encode(patient_ref) AS patient" if pending else "")
    return [lines, encoded], _taken_sql("facts", "$created", "")


def _decisions_sql(ctx: prepare.RowContext, pending: bool = False
                   ) -> tuple[list[tuple[str, str]], str]:
    """The stages and the taken rows' query of decisions; ``pending`` as for encounters."""
    payload = _json_fields((
        ("decided_at", "day", True),
        ("paid_amount", _money("paid_amount"), True),
        ("paid_codes", _codes_json("paid_codes"), False),
        ("rejected_codes", _codes_json("rejected_codes"), False),
        ("reason", _nullable("reason"), False),
    ))
    lines, cells = _stages(ctx, _DECISION_COLUMNS)
    typed = f"""
            SELECT *, paris_offset(concat(day, 'T00:00:00'), year(decided)) AS day_off
            FROM (SELECT *, strftime(decided, '%Y-%m-%d') AS day
                  FROM (SELECT *, {_parsed('decided_at', _DATE_FORMATS)} AS decided
                        FROM ({cells})))"""
    encoded = _encoded(typed, ("day_off IS NOT NULL", "decided IS NOT NULL"),
                       payload, "concat(day, 'T00:00:00', day_off)", pending)
    return [lines, encoded], _taken_sql("decision", "$head", ", sha256(payload) AS sha, ref")
