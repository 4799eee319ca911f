"""Imports run one way: ``cli`` → ``audit`` → ``projections`` → ``ledger`` → ``ledger.vocabulary``.

Every module's imports are read from its source (``ast``), function-local ones included: the write
side never imports the read side, the audit trail or the CLI; ``ops`` imports none of them; and
the first-party modules import each other without a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "projections", "audit", "cli", "ops")

#: What each top-level package must not import.
FORBIDDEN = {
    "ledger": {"projections", "audit", "cli"},
    "projections": {"audit", "cli"},
    "audit": {"cli"},
    "ops": {"audit", "projections", "cli"},
}

#: Imports exempt from ``FORBIDDEN``, as (module, imported module, name):
#: removed by the ingest rewrite (which takes PARIS from ``ledger.vocabulary``).
ALLOWED: set[tuple[str, str, str | None]] = set()


class Import(NamedTuple):
    module: str  # the importing module
    target: str  # the first-party module imported
    name: str | None  # the name taken from it (``from target import name``), None for ``import``
    line: int


def _modules() -> dict[str, Path]:
    """Every first-party module of ``PACKAGES`` by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports(module: str) -> Iterator[Import]:
    """The first-party imports of ``module``, at any depth of its code."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield Import(module, alias.name, None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if _is_package(module) else module.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join([*package, *([base] if base else [])])
            if base.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in MODULES else base
                yield Import(module, target, alias.name, node.lineno)


IMPORTS = [imp for module in sorted(MODULES) for imp in _imports(module)]


def test_the_imports_are_read() -> None:
    """Guards the parser itself: top-level, function-local and ``from package import module``."""
    seen = {(imp.module, imp.target) for imp in IMPORTS}
    assert ("ledger.store", "ledger.chain") in seen
    assert ("cli.audit_cmd", "audit.extract") in seen  # inside a function
    assert ("audit.extract", "audit.report_pdf") in seen  # inside a function
    assert ("audit.extract", "audit.bundle") in seen  # from audit import bundle as b
    assert {"ledger.vocabulary", "audit.extract", "ops.roles", "cli.main"} <= set(MODULES)


def test_imports_run_one_way() -> None:
    wrong = [
        f"{MODULES[imp.module].relative_to(ROOT)}:{imp.line}: {imp.module} imports "
        f"{imp.target}{'' if imp.name is None else f' ({imp.name})'}"
        for imp in IMPORTS
        if imp.target.split(".")[0] in FORBIDDEN.get(imp.module.split(".")[0], set())
        and (imp.module, imp.target, imp.name) not in ALLOWED
    ]
    assert wrong == []


def test_the_vocabulary_imports_nothing_of_the_project() -> None:
    assert [imp for imp in IMPORTS if imp.module == "ledger.vocabulary"] == []


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for imp in IMPORTS:
        if imp.target in MODULES and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
