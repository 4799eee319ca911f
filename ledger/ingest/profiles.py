"""Mapping profiles: how another software's export maps onto the canonical columns.

A profile is a small YAML file::

    name: medisoft
    encoding: cp1252        # optional: utf-8 or cp1252 (default: detected)
    separator: ";"          # optional (default: detected from the header)
    columns:                # their column name -> canonical column name
      num_dossier: encounter_ref
      date_acte: performed_at
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ledger.errors import InputFileError, Problem
from ledger.ingest.reader import normalise
from ledger.ingest.rows import DECISION_COLUMNS, ENCOUNTER_COLUMNS

_ALLOWED_KEYS = {"name", "encoding", "separator", "columns", "description"}


@dataclass(frozen=True)
class Profile:
    name: str
    encoding: str | None = None
    separator: str | None = None
    columns: dict[str, str] = field(default_factory=dict)

    @classmethod
    def canonical(cls) -> Profile:
        return cls("canonical")

    def rename(self, column: str) -> str:
        return self.columns.get(column, column)


def load_profile(spec: str | None) -> Profile:
    """``canonical`` (or None) or the path of a profile YAML file."""
    if spec in (None, "", "canonical"):
        return Profile.canonical()
    path = Path(str(spec))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputFileError(Problem(str(path), 0, None, f"cannot read profile: {exc}")) from None
    if not isinstance(data, dict):
        raise InputFileError(Problem(str(path), 1, None, "a profile is a YAML mapping"))
    unknown = set(data) - _ALLOWED_KEYS
    if unknown:
        raise InputFileError(Problem(str(path), 1, None, f"unknown profile keys: {sorted(unknown)}"))
    canonical = set(ENCOUNTER_COLUMNS) | set(DECISION_COLUMNS)
    columns = {normalise(k): normalise(v) for k, v in (data.get("columns") or {}).items()}
    bad = sorted(v for v in columns.values() if v not in canonical)
    if bad:
        raise InputFileError(Problem(str(path), 1, None, f"not canonical columns: {bad}"))
    sep = data.get("separator")
    if sep is not None and sep not in (";", ","):
        raise InputFileError(Problem(str(path), 1, None, "separator must be ';' or ','"))
    return Profile(str(data.get("name") or path.stem), data.get("encoding"), sep, columns)
