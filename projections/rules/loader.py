"""Loading rule sets from their data folders, strictly, with every error collected.

A rule-set folder holds either a base rule set (``rules.yaml`` + ``parameters/*.yaml``) or an
overlay (``rules.yaml`` with ``base:`` and ``modifications:``, applied to a copy of the base, which
is the sibling folder of that name). See ``docs.md`` for the format.
"""

from __future__ import annotations

from pathlib import Path

from projections.rules.model import Parameter, RuleSet
from projections.rules.params import Errors, parse_parameter
from projections.rules.rulesfile import (
    apply_modifications,
    header,
    parse_groups,
    parse_options,
    parse_rules,
    validate,
)
from projections.rules.yamlsrc import LineDict, RuleFileError, line_of, read_yaml

DATA_DIR = Path(__file__).parent / "data"
RULES_FILE = "rules.yaml"
PARAMETERS_DIR = "parameters"
_MAX_DEPTH = 4


class RuleSetError(Exception):
    """A rule set could not be loaded; ``errors`` lists every problem found."""

    def __init__(self, errors: list[RuleFileError]) -> None:
        self.errors = list(errors)
        first = f": {self.errors[0]}" if self.errors else ""
        super().__init__(f"{len(self.errors)} error(s) in rule set{first}")


def rule_set_dir(name_or_path: str | Path) -> Path:
    """The folder of a rule set given by name (packaged data) or by path.

    Raises:
        FileNotFoundError: there is no such rule set.
    """
    path = Path(name_or_path)
    if path.name == RULES_FILE:
        path = path.parent
    if isinstance(name_or_path, str) and "/" not in name_or_path and not path.is_dir():
        path = DATA_DIR / name_or_path
    if not (path / RULES_FILE).is_file():
        raise FileNotFoundError(f"no rule set at {path} (no {RULES_FILE})")
    return path


def load_rule_set(name_or_path: str | Path) -> RuleSet:
    """Load and resolve a rule set (an overlay is resolved on its base).

    Args:
        name_or_path: a packaged rule set's name (``historical``) or a folder holding
            ``rules.yaml`` (or that file itself).

    Returns:
        The resolved ``RuleSet``. Raises ``RuleSetError`` carrying every error found, and
        ``FileNotFoundError`` when there is no such rule set.
    """
    errors: list[RuleFileError] = []
    rule_set = _load(rule_set_dir(name_or_path), errors, 0)
    if errors or rule_set is None:
        raise RuleSetError(errors)
    return rule_set


def check_path(path: str | Path) -> list[RuleFileError]:
    """Every error in a rule-set folder, a folder of rule sets, or one parameter file.

    Args:
        path: a rule-set folder (or its ``rules.yaml``), a folder whose sub-folders are rule
            sets, or a single parameter file.

    Returns:
        The errors found, in file order; an empty list when everything is valid.
    """
    path = Path(path)
    if path.is_file() and path.name != RULES_FILE:
        return parse_parameter(path)[1]
    if path.is_file() or (path / RULES_FILE).is_file():
        errors: list[RuleFileError] = []
        _load(path.parent if path.is_file() else path, errors, 0)
        return errors
    if path.is_dir():
        folders = sorted(p for p in path.iterdir() if (p / RULES_FILE).is_file())
        if folders:
            return [e for folder in folders for e in check_path(folder)]
    return [RuleFileError(str(path), 0, f"no rule set here (no {RULES_FILE})")]


def list_rule_sets(data_dir: Path = DATA_DIR) -> list[tuple[str, str]]:
    """The packaged rule sets as ``(name, description)``, by name.

    Args:
        data_dir: where the rule-set folders are (the packaged data by default).

    Returns:
        One pair per folder holding a ``rules.yaml`` (its description read from that file).
    """
    out = []
    for folder in sorted(p for p in data_dir.iterdir() if (p / RULES_FILE).is_file()):
        doc, _ = read_yaml(folder / RULES_FILE)
        description = doc.get("description", "") if isinstance(doc, dict) else ""
        out.append((folder.name, str(description or "").strip()))
    return out


def _load(folder: Path, errors: list[RuleFileError], depth: int) -> RuleSet | None:
    file = folder / RULES_FILE
    doc, read_errors = read_yaml(file)
    errors.extend(read_errors)
    if not isinstance(doc, LineDict):
        if not read_errors:
            errors.append(RuleFileError(str(file), 1, f"{RULES_FILE} must be a mapping"))
        return None
    err = Errors(str(file))
    overlay = "base" in doc
    name, description = header(doc, err, overlay)
    if name and name != folder.name:
        err.add(line_of(doc, "name"), f"name {name!r} differs from the folder name {folder.name!r}")
    if overlay:
        result = _load_overlay(folder, doc, name, description, err, errors, depth)
    else:
        result = _load_base(folder, doc, name, description, err, errors)
    errors.extend(err)
    return None if err else result


def _load_base(folder: Path, doc: LineDict, name: str, description: str, err: Errors,
               errors: list[RuleFileError]) -> RuleSet | None:
    parameters: dict[str, Parameter] = {}
    codes: set[str] = set()
    param_dir = folder / PARAMETERS_DIR
    files = sorted(param_dir.glob("*.yaml")) if param_dir.is_dir() else []
    if not files:
        err.add(1, f"a base rule set needs {PARAMETERS_DIR}/*.yaml files beside {RULES_FILE}")
    for path in files:
        codes.add(path.stem)
        parameter, param_errors = parse_parameter(path)
        errors.extend(param_errors)
        if parameter is not None:
            parameters[parameter.code] = parameter
    options = parse_options(doc.get("options"), err)
    rules, lines = parse_rules(doc, codes, err)
    groups, group_lines = parse_groups(doc, err)
    validate(rules, lines, groups, group_lines, err)
    if len(parameters) != len(files):
        return None
    return RuleSet(name, description, parameters, tuple(rules), tuple(groups), options)


def _load_overlay(folder: Path, doc: LineDict, name: str, description: str, err: Errors,
                  errors: list[RuleFileError], depth: int) -> RuleSet | None:
    if (folder / PARAMETERS_DIR).exists():
        err.add(1, f"an overlay takes its parameters from its base: remove {PARAMETERS_DIR}/")
    base_name = doc.get("base")
    base_dir = folder.parent / str(base_name)
    if not isinstance(base_name, str) or base_dir == folder or not (base_dir / RULES_FILE).is_file():
        err.add(line_of(doc, "base"), f"base {base_name!r} is not a sibling rule-set folder")
        return None
    if depth >= _MAX_DEPTH:
        err.add(line_of(doc, "base"), "overlays nested too deep (a cycle?)")
        return None
    base = _load(base_dir, errors, depth + 1)
    if base is None:
        err.add(line_of(doc, "base"), f"base rule set {base_name!r} has errors")
        return None
    rules, options, mods = apply_modifications(base, doc.get("modifications"), err)
    return RuleSet(name, description, dict(base.parameters), tuple(rules), base.groups, options,
                   base=base.name, modifications=tuple(mods))
