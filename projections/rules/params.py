"""Reading one parameter file (``parameters/CODE.yaml``), OpenFisca style, strictly.

Shape::

    description: GP consultation (G)
    metadata:
      unit: EUR
      reference:
        2017-05-01: {title: "...", href: "https://..."}
    values:
      2017-05-01: {value: "25.00"}
      2023-11-01: {value: "26.50", confirmed: false, note: "..."}

Every problem becomes a ``RuleFileError`` (file, line, message); nothing is raised.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from projections.rules.model import Parameter, Reference, ValueEntry
from projections.rules.yamlsrc import LineDict, RuleFileError, line_of, read_yaml

CODE_RE = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MONEY_RE = re.compile(r"^\d{1,7}\.\d{2}$")

TOP_KEYS = {"description", "metadata", "values"}
META_KEYS = {"unit", "reference", "official_journal_date", "last_value_still_valid_on", "notes"}
VALUE_KEYS = {"value", "confirmed", "note"}
REF_KEYS = {"title", "href"}


class Errors(list[RuleFileError]):
    """An error list bound to one file, with a shorthand to add an error at a line."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def add(self, line: int, message: str) -> None:
        self.append(RuleFileError(self.file, line, message))


def parse_date(text: Any, errors: Errors, line: int, what: str) -> date | None:
    """A ``YYYY-MM-DD`` date, or None after recording an error."""
    if not isinstance(text, str) or not DATE_RE.match(text):
        errors.add(line, f"{what}: {text!r} is not a date YYYY-MM-DD")
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        errors.add(line, f"{what}: {text!r} is not a valid date ({exc})")
        return None


def check_keys(node: Any, allowed: set[str], errors: Errors, what: str,
               required: set[str] | frozenset[str] = frozenset()) -> bool:
    """Record unknown and missing keys of a mapping; False if it is not a mapping at all."""
    if not isinstance(node, LineDict):
        errors.add(line_of(node), f"{what} must be a mapping")
        return False
    for key in node:
        if key not in allowed:
            errors.add(line_of(node, key),
                       f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})")
    for key in sorted(required - set(node)):
        errors.add(line_of(node), f"{what} lacks the key {key!r}")
    return True


def _text(node: Any, key: str, errors: Errors, what: str) -> str:
    value = node.get(key)
    if not isinstance(value, str) or not value.strip():
        errors.add(line_of(node, key), f"{what}: {key} must be a non-empty text")
        return ""
    return value


def _references(meta: LineDict, errors: Errors) -> dict[date, Reference]:
    refs: dict[date, Reference] = {}
    node = meta.get("reference")
    if not isinstance(node, LineDict):
        errors.add(line_of(meta, "reference"), "metadata.reference must map dates to {title, href}")
        return refs
    for key, item in node.items():
        line = line_of(node, key)
        day = parse_date(key, errors, line, "reference date")
        if not check_keys(item, REF_KEYS, errors, f"reference {key}", REF_KEYS) or day is None:
            continue
        title = _text(item, "title", errors, f"reference {key}")
        href = _text(item, "href", errors, f"reference {key}")
        if href and not href.startswith(("https://", "http://")):
            errors.add(line_of(item, "href"), f"reference {key}: href {href!r} is not a URL")
        refs[day] = Reference(title, href)
    return refs


def _money(raw: Any, errors: Errors, line: int, key: str) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, float | int) and not isinstance(raw, bool):
        errors.add(line, f"value {raw!r} on {key}: money must be a quoted decimal string "
                         f"(\"{raw}\"), never an unquoted number")
        return None
    if not isinstance(raw, str) or not MONEY_RE.match(raw):
        errors.add(line, f"value {raw!r} on {key}: money must be a decimal string with two "
                         "decimals, e.g. \"25.00\"")
        return None
    return Decimal(raw)


def _entries(node: LineDict, refs: dict[date, Reference], errors: Errors) -> list[ValueEntry]:
    out: list[ValueEntry] = []
    seen: set[date] = set()
    for key, item in node.items():
        line = line_of(node, key)
        day = parse_date(key, errors, line, "value date")
        if not check_keys(item, VALUE_KEYS, errors, f"value of {key}", {"value"}) or day is None:
            continue
        if day in seen:
            errors.add(line, f"duplicate value date {key}")
            continue
        seen.add(day)
        value = _money(item.get("value"), errors, line_of(item, "value"), key)
        confirmed = item.get("confirmed", True)
        if not isinstance(confirmed, bool):
            errors.add(line_of(item, "confirmed"), f"value of {key}: confirmed must be true/false")
            confirmed = False
        note = item.get("note")
        if note is not None and (not isinstance(note, str) or not note.strip()):
            errors.add(line_of(item, "note"), f"value of {key}: note must be a non-empty text")
            note = None
        if not confirmed and note is None:
            errors.add(line, f"value of {key} is unconfirmed: a note must say what is unconfirmed")
        ref = refs.get(day)
        if ref is None:
            errors.add(line, f"value of {key} has no reference (metadata.reference.{key})")
            continue
        if item.get("value") is None or value is not None:
            out.append(ValueEntry(day, value, ref, confirmed, note))
    for day in sorted(set(refs) - seen):
        errors.add(line_of(node), f"reference {day} matches no value date")
    return sorted(out, key=lambda e: e.effective_from)


def parse_parameter(path: Path, label: str | None = None) -> tuple[Parameter | None, list[RuleFileError]]:
    """Read and check one parameter file; the parameter code is the file's stem.

    Args:
        path: ``parameters/CODE.yaml``.
        label: the file name used in errors (default: the path).

    Returns:
        The parameter (None if it could not be built) and every error found.
    """
    errors = Errors(label or str(path))
    code = path.stem
    if not CODE_RE.match(code):
        errors.add(0, f"parameter file name {path.name!r} is not an upper-case code like G.yaml")
    data, read_errors = read_yaml(path, errors.file)
    errors.extend(read_errors)
    if data is None and read_errors:
        return None, errors
    if not check_keys(data, TOP_KEYS, errors, f"parameter {code}", TOP_KEYS):
        return None, errors
    description = _text(data, "description", errors, f"parameter {code}")
    meta = data.get("metadata")
    refs: dict[date, Reference] = {}
    unit = ""
    if check_keys(meta, META_KEYS, errors, "metadata", {"unit", "reference"}):
        unit = _text(meta, "unit", errors, "metadata")
        if unit and unit != "EUR":
            errors.add(line_of(meta, "unit"), f"unit {unit!r}: only EUR is supported")
        refs = _references(meta, errors)
    values = data.get("values")
    if not isinstance(values, LineDict) or not values:
        errors.add(line_of(data, "values"), "values must map dates to {value: \"…\"}")
        return None, errors
    entries = _entries(values, refs, errors)
    if errors:
        return None, errors
    return Parameter(code, description, unit, tuple(entries)), errors
