"""Strict YAML reading for rule-set files: line numbers kept, duplicate keys reported.

PyYAML's ``SafeLoader`` silently keeps the last of two equal keys and turns ``2023-11-01`` into a
``date``. Here mappings become ``LineDict`` (a dict that remembers the line of each key), sequences
become ``LineList``, dates stay strings (checked later, like openfisca-core's
``parameters/config.py``), and a duplicate key is recorded as an error value instead of being
overwritten or raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class RuleFileError:
    """One problem found in a rule-set file (``file:line: message``)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class LineDict(dict[Any, Any]):
    """A mapping read from YAML: ``line`` is where it starts, ``lines[key]`` where each key is."""

    line: int = 0
    lines: dict[Any, int]


class LineList(list[Any]):
    """A sequence read from YAML: ``line`` is where it starts, ``lines[i]`` where each item is."""

    line: int = 0
    lines: list[int]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that keeps lines and dates-as-strings and collects duplicate keys."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.errors: list[RuleFileError] = []

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        out = LineDict()
        out.line = node.start_mark.line + 1
        out.lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                self.errors.append(RuleFileError(self.file, line, "a mapping key must be a scalar"))
                continue
            if key in out:
                self.errors.append(RuleFileError(
                    self.file, line, f"duplicate key {key!r} (first at line {out.lines[key]})"))
                continue
            out[key] = self.construct_object(value_node, deep=True)
            out.lines[key] = line
        return out

    def construct_sequence(self, node: Any, deep: bool = False) -> Any:
        out = LineList(self.construct_object(child, deep=True) for child in node.value)
        out.line = node.start_mark.line + 1
        out.lines = [child.start_mark.line + 1 for child in node.value]
        return out


def _timestamp_as_text(loader: _StrictLoader, node: Any) -> str:
    return str(loader.construct_scalar(node))


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:seq", _StrictLoader.construct_sequence)


def read_yaml(path: Path, label: str | None = None) -> tuple[Any, list[RuleFileError]]:
    """Read one YAML file strictly.

    Args:
        path: the file.
        label: the file name used in errors (default: the path as given).

    Returns:
        The document (``LineDict``/``LineList``/scalars, dates as strings, or None when the file
        cannot be read) and the list of errors found while reading it.
    """
    file = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [RuleFileError(file, 0, f"cannot read the file: {exc}")]
    loader = _StrictLoader(text, file)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [*loader.errors, RuleFileError(file, line, f"invalid YAML: {problem}")]
    finally:
        loader.dispose()
    return data, loader.errors


def line_of(container: Any, key: Any = None) -> int:
    """The line of ``key`` in a ``LineDict``/``LineList`` (or of the container itself)."""
    if key is not None:
        if isinstance(container, LineDict):
            return container.lines.get(key, container.line)
        if isinstance(container, LineList) and isinstance(key, int) and key < len(container.lines):
            return container.lines[key]
    return int(getattr(container, "line", 0))
