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
generated rows). Corrections and voids are rare and keep the row-by-row event builders.

Why DuckDB: its vectorised string, regex and hash functions do in C++ what costs ~50 µs a row in
Python, and they run without the GIL, so the next block is prepared in a background thread while
the main thread writes the previous one to PostgreSQL.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

import duckdb
import orjson

from ledger import domain
from ledger.ingest import prepare
from ledger.ingest.values import paris_years

_NOT_TEXT = r"\x00-\x20\"\\\x7f"
#: Characters ``str.strip`` removes besides the ASCII ones (a text cell must not start or end
#: with one, and we keep them out of cells altogether so that DuckDB's ``trim`` agrees).
_UNICODE_SPACES = r"\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_DATETIME = r"(\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4})[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?"
_DATE = r"(\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4})"
_CODE = r"[A-Za-z][A-Za-z0-9]{0,7}"
_FLAG = r"((?i)0|1|false|true|non|oui|n|o|no|yes|y)?"
FLAGS_TRUE = ("1", "true", "oui", "o", "yes", "y")


def _shapes(separator: str) -> dict[str, str]:
    """Each column's cell pattern (spaces around the value allowed, as ``strip`` removes them)."""
    sep = _re_escape(separator)
    ascii_word = rf"[^{_NOT_TEXT}{sep}\x{{80}}-\x{{10ffff}}]"
    word = rf"[^{_NOT_TEXT}{sep}{_UNICODE_SPACES}]"
    text, optional_text = rf" *{word}( *{word})* *", rf"( *{word})* *"
    codes = rf"{_CODE}( *\+ *{_CODE})*"
    money = r" *\d{1,9}([.,]\d{1,2})? *"
    return {
        "association": rf" *{ascii_word}( *{ascii_word})* *",
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
    """A row the fast path took: what the pipeline needs from it, in a few columns."""

    line: int
    oid: bytes          # the aggregate id, 16 bytes
    sha: str            # SHA-256 of the facts or decision JSON
    void: bool
    state: bytes        # the Recorded (encounters) or Decided (decisions) event state
    state_sha: bytes    # SHA-256 of the state, for the hash chain
    ref: str            # "ASSOCIATION/REF", for messages

    def good(self) -> prepare.Good:
        """The row as the row-by-row preparer gives it (for corrections, voids, messages)."""
        data = json.loads(self.state)
        text = orjson.dumps(data.get("facts", data.get("decision"))).decode("utf-8")
        return prepare.Good(self.line, UUID(bytes=self.oid), self.ref, self.void, text, self.sha,
                            data["effective_at"], {})


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
        self.db = duckdb.connect(config={"threads": 1})
        self.db.execute(_paris_offset_macro())
        key = ctx.key if len(ctx.key) <= 64 else hashlib.sha256(ctx.key).digest()
        key = key.ljust(64, b"\x00")
        params: dict[str, Any] = {
            "ns": domain.NAMESPACE.bytes,
            "ipad": bytes(b ^ 0x36 for b in key),
            "opad": bytes(b ^ 0x5C for b in key),
            "created": created_prefix,
            "head": head_prefix,
            "prov_before": provenance[0],
            "prov_after": provenance[1],
        }
        stages = (_encounters_sql if ctx.kind == "encounters" else _decisions_sql)(ctx)
        self.stages = [(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}",
                        {k: v for k, v in {**params, "text": "", "base": 0}.items()
                         if f"${k}" in select})
                       for name, select in stages]

    def close(self) -> None:
        self.db.close()

    def __call__(self, text: str, first_line: int) -> list[Taken | prepare.Good | prepare.Bad]:
        """Prepared rows of ``text`` (whole lines, no quote character), the first at ``first_line``.

        Blank rows are skipped, as the reader does; rows the fast path does not take are prepared
        row by row, in their place.
        """
        for statement, params in self.stages:
            if "text" in params:
                params = {**params, "text": text, "base": first_line}
            self.db.execute(statement, params)
        result = self.db.execute(_RESULT)
        out: list[Taken | prepare.Good | prepare.Bad] = []
        taken = Taken._make
        for row in result.fetchall():
            if row[1] is not None:
                out.append(taken(row[:7]))
                continue
            fields = next(csv.reader([row[7] + "\n"], delimiter=self.ctx.separator,
                                     strict=False), [])
            if fields and any(f.strip() for f in fields):
                out.extend(prepare.prepare(self.ctx, [(row[0], fields)]))
        return out


def _paris_offset_macro() -> str:
    """``paris_offset(local, year)``: the offset of a naive ISO time, NULL in a DST change hour.

    ISO texts of one width compare as times do, so the year's boundaries are compared as text.
    """
    years = paris_years()
    first = years[0].year

    def column(values: Sequence[str]) -> str:
        return "[" + ", ".join(_q(v) for v in values) + "]"

    gap_start = column([y.gap_start.isoformat() for y in years])
    gap_end = column([y.gap_end.isoformat() for y in years])
    overlap_start = column([y.overlap_start.isoformat() for y in years])
    overlap_end = column([y.overlap_end.isoformat() for y in years])
    index = {y.year - first + 1 for y in years}
    assert index == set(range(1, len(years) + 1)), "paris_years() must be consecutive years"
    return f"""
    CREATE TEMP MACRO paris_offset(local, year) AS (
        CASE WHEN year - {first - 1} NOT BETWEEN 1 AND {len(years)} THEN NULL
        WHEN local < {gap_start}[year - {first - 1}]
            THEN {column([y.before for y in years])}[year - {first - 1}]
        WHEN local >= {gap_end}[year - {first - 1}] AND local < {overlap_start}[year - {first - 1}]
            THEN {column([y.summer for y in years])}[year - {first - 1}]
        WHEN local >= {overlap_end}[year - {first - 1}]
            THEN {column([y.after for y in years])}[year - {first - 1}]
        END)"""


def _stages(ctx: prepare.RowContext, columns: Sequence[str]) -> list[tuple[str, str]]:
    """The first stages: numbered lines matched against the file's line shape, then cells."""
    shapes = _shapes(ctx.separator)
    line_shape = _re_escape(ctx.separator).join(shapes[c] for c in ctx.header) + "\r?"
    blank = f"[ {_re_escape(ctx.separator)}]*\r?"
    position = {name: i + 1 for i, name in enumerate(ctx.header)}
    cells = ", ".join(
        f"{'upper' if c == 'association' else ''}(trim(f[{position[c]}])) AS {c}"
        if c in position else f"'' AS {c}" for c in columns)
    return [
        ("b_lines", f"""
            SELECT line, raw, regexp_full_match(raw, {_q(line_shape)}) AS ok
            FROM (SELECT unnest(l) AS raw,
                         CAST(generate_subscripts(l, 1) + $base - 1 AS BIGINT) AS line
                  FROM (SELECT string_split($text, chr(10)) AS l))
            WHERE NOT regexp_full_match(raw, {_q(blank)})"""),
        ("b_split", f"""
            SELECT line, string_split(rtrim(raw, chr(13)), {_q(ctx.separator)}) AS f
            FROM b_lines WHERE ok"""),
        ("b_cells", f"SELECT line, {cells} FROM b_split"),
    ]


def _local(cell: str) -> str:
    """A trimmed date-time cell as naive ISO text 'YYYY-MM-DDTHH:MM:SS' (shape already checked)."""
    seconds = f"CASE WHEN length({cell}) = 19 THEN substr({cell}, 18, 2) ELSE '00' END"
    return (f"CASE WHEN {cell} = '' THEN NULL ELSE concat({_day(f'left({cell}, 10)')}, 'T', "
            f"substr({cell}, 12, 5), ':', {seconds}) END")


def _day(cell: str) -> str:
    """A trimmed date cell (DD/MM/YYYY or YYYY-MM-DD, shape already checked) as YYYY-MM-DD."""
    return (f"CASE WHEN substr({cell}, 3, 1) = '/' THEN concat(substr({cell}, 7, 4), '-', "
            f"substr({cell}, 4, 2), '-', substr({cell}, 1, 2)) ELSE {cell} END")


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


def _oid(h: str) -> str:
    """uuid5 as 16 bytes from its SHA-1 hex ``h``: version 5 and the RFC 4122 variant set."""
    variant = f"substr('89ab89ab89ab89ab', strpos('0123456789abcdef', substr({h}, 17, 1)), 1)"
    return (f"unhex(concat(substr({h}, 1, 12), '5', substr({h}, 14, 3), {variant}, "
            f"substr({h}, 18, 15)))")


def _encoding(checks: Sequence[str], payload: str, effective: str, field: str, prefix: str,
              void: str) -> list[tuple[str, str]]:
    """The last stages, from typed cells (``b_typed``) to event states.

    Each stage materialises what the next one uses more than once: DuckDB would otherwise
    evaluate an inlined expression (a split, a hash) once per reference.
    """
    ok = " AND ".join(f"({c})" for c in checks)
    # uuid5(NAMESPACE, "encounter:<association>\x1f<ref>"), as domain.encounter_id
    name = "sha1($ns || encode(concat('encounter:', association, chr(31), encounter_ref)))"
    state = _concat(prefix, _q(',"effective_at":"'), "effective", _q(f'","{field}":'), "payload",
                    _q(f',"{field}_sha256":"'), "sha", _q('","provenance":'), "$prov_before",
                    "CAST(line AS VARCHAR)", "$prov_after", "'}'")
    return [
        ("b_good", f"SELECT *, {name} AS name_sha1 FROM b_typed WHERE coalesce({ok}, false)"),
        ("b_encoded", f"""
            SELECT line, {_oid('name_sha1')} AS oid, {void} AS void,
                   concat(association, '/', encounter_ref) AS ref, {payload} AS payload,
                   {effective} AS effective
            FROM b_good"""),
        ("b_hashed", "SELECT *, sha256(payload) AS sha FROM b_encoded"),
        ("b_state", f"SELECT line, oid, sha, void, ref, {state} AS state FROM b_hashed"),
    ]


#: The result: taken rows with their state, the others with their text only, in line order.
_RESULT = """
    SELECT line, oid, sha, void, encode(state), unhex(sha256(state)), ref, NULL AS raw
    FROM b_state
    UNION ALL
    SELECT l.line, NULL, NULL, NULL, NULL, NULL, NULL, l.raw
    FROM b_lines l ANTI JOIN b_state s ON s.line = l.line
    ORDER BY line"""

_ENCOUNTER_COLUMNS = ("association", "encounter_ref", "regulation_origin", "regulated_at",
                      "performed_at", "act", "patient_ref", "patient_birth_year", "doctor_rpps",
                      "treating_doctor", "pdsa", "billed_codes", "billed_amount", "invoice_ref",
                      "status")
_DECISION_COLUMNS = ("association", "encounter_ref", "decided_at", "paid_amount", "paid_codes",
                     "rejected_codes", "reason")


def _encounters_sql(ctx: prepare.RowContext) -> list[tuple[str, str]]:
    flags = {c: f"CASE WHEN lower({c}) IN ({', '.join(_q(v) for v in FLAGS_TRUE)}) "
                "THEN 'true' ELSE 'false' END" for c in ("treating_doctor", "pdsa")}
    checks = (
        "regulated_at = '' OR reg_off IS NOT NULL",
        "perf_off IS NOT NULL",
        "patient_birth_year = '' OR try_cast(patient_birth_year AS INT) BETWEEN 1890 AND 2100",
        # The checks across columns (rows.py): an origin needs a time, no act before it.
        "upper(regulation_origin) = 'NONE' OR regulated_at <> ''",
        f"regulated_at = '' OR {_instant('reg_ts', 'reg_off')} <= "
        f"{_instant('perf_ts', 'perf_off')}",
    )
    pseudonym = ("concat('ph_', left(sha256($opad || unhex(sha256($ipad || encode(patient_ref)))),"
                 " 32))")
    payload = _json_fields((
        ("association", "association", True),
        ("encounter_ref", "encounter_ref", True),
        ("regulation_origin", "upper(regulation_origin)", True),
        ("regulated_at", "CASE WHEN reg_local IS NULL THEN 'null' "
                         "ELSE concat('\"', reg_local, reg_off, '\"') END", False),
        ("performed_at", "concat(perf_local, perf_off)", True),
        ("act", "lower(act)", True),
        ("patient_pseudonym", pseudonym, True),
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
    return [
        *_stages(ctx, _ENCOUNTER_COLUMNS),
        ("b_local", f"""
            SELECT *, {_local('regulated_at')} AS reg_local, {_local('performed_at')} AS perf_local
            FROM b_cells"""),
        ("b_times", """
            SELECT *, try_cast(replace(reg_local, 'T', ' ') AS TIMESTAMP) AS reg_ts,
                   try_cast(replace(perf_local, 'T', ' ') AS TIMESTAMP) AS perf_ts,
                   try_cast(left(reg_local, 4) AS INT) AS reg_year,
                   try_cast(left(perf_local, 4) AS INT) AS perf_year
            FROM b_local"""),
        ("b_typed", """
            SELECT *, paris_offset(reg_local, reg_year) AS reg_off,
                   paris_offset(perf_local, perf_year) AS perf_off
            FROM b_times
            WHERE (reg_local IS NULL OR reg_ts IS NOT NULL) AND perf_ts IS NOT NULL"""),
        *_encoding(checks, payload, "concat(perf_local, perf_off)", "facts", "$created",
                   "lower(status) = 'void'"),
    ]


def _decisions_sql(ctx: prepare.RowContext) -> list[tuple[str, str]]:
    payload = _json_fields((
        ("decided_at", "day", True),
        ("paid_amount", _money("paid_amount"), True),
        ("paid_codes", _codes_json("paid_codes"), False),
        ("rejected_codes", _codes_json("rejected_codes"), False),
        ("reason", _nullable("reason"), False),
    ))
    return [
        *_stages(ctx, _DECISION_COLUMNS),
        ("b_days", f"SELECT *, {_day('decided_at')} AS day FROM b_cells"),
        ("b_typed", """
            SELECT *, paris_offset(concat(day, 'T00:00:00'), try_cast(left(day, 4) AS INT)) AS day_off
            FROM b_days WHERE try_cast(day AS DATE) IS NOT NULL"""),
        *_encoding(("day_off IS NOT NULL",), payload, "concat(day, 'T00:00:00', day_off)",
                   "decision", "$head", "false"),
    ]
