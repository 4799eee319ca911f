"""The README's examples are real commands, and its links lead somewhere in the repository.

Every ``claims …`` line of a ```sh block is one command: its path names a command (its
``--help`` exits 0), each ``--option`` it uses appears in that help, and the whole line parses
as the CLI would parse it (no extra arguments, valid choices, required options present). So a
renamed option or command makes this test fail instead of leaving the docs dangling.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def claims_lines(text: str) -> list[str]:
    """The ``claims …`` lines of the ```sh blocks (comments cut, ``$(…)`` lines skipped)."""
    lines = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "claims":
                lines.append(line)
    return lines


def _split(words: list[str]) -> tuple[list[str], list[str]]:
    """The command path (``audit extract``) and the arguments after it."""
    command = typer.main.get_command(app)
    path: list[str] = []
    rest = list(words)
    while rest and hasattr(command, "commands") and rest[0] in command.commands:
        command = command.commands[rest[0]]
        path.append(rest.pop(0))
    return path, rest


EXAMPLES = claims_lines(README.read_text(encoding="utf-8"))


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 15
    assert any(line.startswith("claims explain") for line in EXAMPLES)


@pytest.mark.parametrize("line", EXAMPLES)
def test_readme_example_names_a_command_and_its_options(line: str) -> None:
    words = shlex.split(line, comments=True)[1:]
    path, rest = _split(words)
    assert path, f"{line!r}: no such command"
    shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200,
                               env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for word in rest:
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", shown.output), (
                f"{line!r}: `claims {' '.join(path)}` has no option {option}")
    # The line as the CLI parses it: extra arguments, wrong choices or missing options fail.
    command = typer.main.get_command(app)
    context = command.make_context("claims", [], resilient_parsing=True)
    leaf = command
    for name in path:
        leaf = leaf.commands[name]  # type: ignore[attr-defined]
    with leaf.make_context(path[-1], rest, parent=context):
        pass


def _links(text: str) -> list[str]:
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", text)
            if not re.match(r"[a-z]+:", target) and not target.startswith("#")]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_lead_to_files_of_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    mentioned = re.findall(r"`((?:\.\./)+[\w./-]+\.md)`", text)   # a path to outside, as code
    assert not mentioned, f"{doc.name} points outside the repository: {mentioned}"
    for target in _links(text):
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name}: {target} is outside the repository"
        assert path.exists(), f"{doc.name}: {target} does not exist"


def test_readme_anchors_exist() -> None:
    text = README.read_text(encoding="utf-8")
    headings = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in headings, anchor
