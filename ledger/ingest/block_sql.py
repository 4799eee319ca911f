"""The fast path's SQL: one DuckDB query that turns a block of lines into framed event states.

A line is taken only when the whole of it has the plain shape of the canonical export: one
regular expression per file checks every cell (text without quotes, backslashes or control
characters; naive times; plain decimals, codes and flags), then a few checks follow (real
calendar days, Paris times outside the DST change hours, birth year range, the checks across
columns). Any other line is left out, for the row-by-row preparer.

The payload's JSON (facts or decision) and the event's state follow their models' layout
(``ledger.layout``): each field's SQL expression is the cell of the same name, encoded by its
kind, unless ``_ENCOUNTER_EXPRESSIONS`` or ``_DECISION_EXPRESSIONS`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel

from ledger import layout
from ledger.ingest.prepare import RowContext
from ledger.ingest.rows import DECISION_COLUMNS, ENCOUNTER_COLUMNS
from ledger.ingest.values import INVISIBLE_RANGES, ParisYear, paris_years

_NOT_TEXT = r"\x00-\x20\"\\\x7f"
#: Characters ``str.strip`` removes besides the ASCII ones (kept out of cells altogether, so
#: that DuckDB's ``trim`` agrees with Python's).
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


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _re_escape(char: str) -> str:
    return "\\" + char if not char.isalnum() else char


def _shapes(separator: str) -> dict[str, str]:
    """Each column's cell pattern (spaces around the value allowed, as ``strip`` removes them);
    a column not named here is optional text."""
    sep = _re_escape(separator)
    word = rf"[^{_NOT_TEXT}{sep}{_UNICODE_SPACES}{_INVISIBLE}]"
    text = rf" *{word}( *{word})* *"
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
        "status": r" *((?i)active|void)? *",
        "decided_at": rf" *{_DATE} *",
        "paid_amount": money,
        "paid_codes": rf" *({codes})? *",
        "rejected_codes": rf" *({codes})? *",
        "optional text": rf"( *{word})* *",
    }


def paris_offset_macro() -> str:
    """``paris_offset(local, year)``: the offset of a naive ISO time, NULL in a DST change hour.

    ISO texts of one width compare as times do, so the year's boundaries are compared as text. A
    year without the usual pair of changes gets NULLs: its rows go to the row-by-row path.
    """
    known = {y.year: y for y in paris_years()}
    first, last = min(known), max(known)
    years = [known.get(year) for year in range(first, last + 1)]

    def column(pick: Callable[[ParisYear], str]) -> str:
        return "[" + ", ".join("NULL" if y is None else q(pick(y)) for y in years) + "]"

    def offset(pick: Callable[[ParisYear], str]) -> str:
        """An offset by year; one literal when every year has the same."""
        found = {pick(y) for y in years if y is not None}
        return q(found.pop()) if len(found) == 1 else f"{column(pick)}[year - {first - 1}]"

    at = f"[year - {first - 1}]"
    return f"""
    CREATE TEMP MACRO paris_offset(local, year) AS (
        CASE WHEN year - {first - 1} NOT BETWEEN 1 AND {len(years)} THEN NULL
        WHEN local < {column(lambda y: y.gap_start.isoformat())}{at}
            THEN {offset(lambda y: y.before)}
        WHEN local >= {column(lambda y: y.gap_end.isoformat())}{at}
             AND local < {column(lambda y: y.overlap_start.isoformat())}{at}
            THEN {offset(lambda y: y.summer)}
        WHEN local >= {column(lambda y: y.overlap_end.isoformat())}{at}
            THEN {offset(lambda y: y.after)}
        END)"""


def cells_sql(ctx: RowContext) -> str:
    """The trimmed cells of the block's lines that have the file's shape, by column name
    (``''`` for a column of the kind the file lacks), with each line's number. Parameters:
    ``$text`` (the block), ``$base`` (its first line's number)."""
    columns = ENCOUNTER_COLUMNS if ctx.kind == "encounters" else DECISION_COLUMNS
    shapes = _shapes(ctx.separator)
    sep = _re_escape(ctx.separator)
    line_shape = sep.join(shapes.get(c, shapes["optional text"]) for c in ctx.header) + "\r?"
    position = {name: i + 1 for i, name in enumerate(ctx.header)}
    cells = ", ".join(
        (f"{'upper' if c == 'association' else ''}(f[{position[c]}])" if c in position
         else "''") + f" AS {c}" for c in columns)
    # Only a line with ' ' beside a separator or at an end needs more than a split; only a
    # line that ends with CR goes through rtrim.
    return f"""
        SELECT line, {cells} FROM (SELECT line, CASE
            WHEN contains(r, {q(' ' + ctx.separator)}) OR contains(r, {q(ctx.separator + ' ')})
                OR starts_with(r, ' ') OR ends_with(r, ' ')
            THEN regexp_split_to_array(trim(r), {q(' *' + sep + ' *')})
            ELSE string_split(r, {q(ctx.separator)}) END AS f
        FROM (SELECT line, CASE WHEN ends_with(raw, chr(13)) THEN rtrim(raw, chr(13))
                                ELSE raw END AS r
              FROM (SELECT unnest(l) AS raw,
                           CAST(generate_subscripts(l, 1) + $base - 1 AS BIGINT) AS line
                    FROM (SELECT string_split($text, chr(10)) AS l))
              WHERE strlen(raw) <= {MAX_LINE_BYTES} AND regexp_full_match(raw, {q(line_shape)})))"""


#: The shapes a date-time cell may have (the line's shape admits no other), the canonical first.
DATETIME_FORMATS = [f"{day}{sep}%H:%M{seconds}" for seconds in ("", ":%S")
                     for day in ("%d/%m/%Y", "%Y-%m-%d") for sep in (" ", "T")]
DATE_FORMATS = ["%d/%m/%Y", "%Y-%m-%d"]


def parsed(cell: str, formats: Sequence[str]) -> str:
    """A trimmed date or date-time cell as a DATE or TIMESTAMP, NULL if empty or not a real day
    (its shape already checked)."""
    listed = "[" + ", ".join(q(f) for f in formats) + "]"
    return f"CASE WHEN {cell} = '' THEN NULL ELSE try_strptime({cell}, {listed}) END"


def instant(ts: str, offset: str) -> str:
    """The UTC instant of a naive timestamp and its offset text ('+02:00')."""
    return (f"{ts} - to_minutes(CAST(substr({offset}, 1, 3) AS INT) * 60 "
            f"+ CAST(substr({offset}, 5, 2) AS INT))")


def _flag(cell: str) -> str:
    """A flag's JSON: the line's shape admits only ``_FLAG``'s spellings, told by their initial."""
    initials = "".join(sorted({v[0] for v in FLAGS_TRUE} | {v[0].upper() for v in FLAGS_TRUE}))
    return f"CASE WHEN {cell} <> '' AND contains({q(initials)}, left({cell}, 1)) " \
           "THEN 'true' ELSE 'false' END"


def _nullable(expr: str) -> str:
    return f"""CASE WHEN {expr} = '' THEN 'null' ELSE concat('"', {expr}, '"') END"""


#: Each kind's JSON of a trimmed cell (quoted kinds give the text inside the quotes).
_BY_KIND: dict[layout.Kind, Callable[[str], str]] = {
    layout.Kind.TEXT: lambda c: c,
    layout.Kind.MONEY: lambda c: f"CAST(try_cast(replace({c}, ',', '.') AS DECIMAL(18, 2)) "
                                 "AS VARCHAR)",
    layout.Kind.CODES: lambda c: (f"""CASE WHEN {c} = '' THEN '[]' ELSE concat('["', """
                                  f"""replace(upper(replace({c}, ' ', '')), '+', '","'), '"]') """
                                  "END"),
    layout.Kind.BOOL: _flag,
    layout.Kind.INT: lambda c: f"coalesce(CAST(try_cast(nullif({c}, '') AS INT) AS VARCHAR), "
                               "'null')",
}


def payload_sql(model: type[BaseModel], special: Mapping[str, str]) -> str:
    """The JSON of ``model`` as one ``concat``, fields in its layout's order: each field's
    expression from ``special``, or its cell's by kind (``_BY_KIND``)."""
    parts: list[str] = []
    for i, f in enumerate(layout.fields(model)):
        expr = special.get(f.name) or _BY_KIND[f.kind](f.name)
        if f.nullable and f.kind is layout.Kind.TEXT and f.name not in special:
            expr = _nullable(expr)
        lead = "{" if i == 0 else ","
        parts.append(q(f'{lead}"{f.name}":' + ('"' if f.quoted else "")))
        parts.append(expr)
        if f.quoted:
            parts.append("'\"'")
    parts.append("'}'")
    return f"concat({', '.join(parts)})"


def state_sql(event: type[BaseModel], values: Mapping[str, str]) -> str:
    """An event's whole stored state as one ``concat`` (a BLOB), from each field's JSON as a SQL
    expression, in the model's order."""
    pieces = layout.state_pieces(event, values)
    return "encode(concat(" + ", ".join(
        q(p) if i % 2 == 0 else p for i, p in enumerate(pieces)) + "))"
