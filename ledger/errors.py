"""Errors as values: every problem found in input carries its file and line until the CLI renders it.

Exceptions are kept for what stops a command (configuration, database); problems in the data are
collected as ``Problem`` values and reported together (beancount style).
"""

from __future__ import annotations

from typing import NamedTuple


class LedgerError(Exception):
    """Base of the ledger's exceptions."""


class ConfigurationError(LedgerError):
    """A missing or invalid setting (e.g. no pseudonymisation key)."""


class UnchainedEventsError(LedgerError):
    """The log holds events the chain does not cover: written by something other than the
    ledger, which chains all it writes in the same transaction. No write goes on until an
    operator has reviewed them and adopted them (``EventWriter(adopt_unchained=True)``)."""

    def __init__(self, first: int, last: int):
        super().__init__(
            f"positions {first}-{last} of the event log have no chain link: they were written by "
            "something other than the ledger (it chains all it writes in the same transaction). "
            "Nothing was written. Review them (`claims verify` names them), then either adopt "
            f"them (`claims audit adopt --through {last}`) or restore the database from a backup "
            "(runbook: audit/docs.md, \"Unchained events\").")
        self.first, self.last = first, last


class UnsealedEventsError(LedgerError):
    """The log holds chained events past its last seal (``ledger.seal``), or a seal that does
    not hold under the ledger's key: written by something other than the ledger, which seals
    every write in the same transaction. No write goes on until an operator has reviewed the
    events and adopted them; a forged seal cannot be adopted (the seals are append-only)."""

    def __init__(self, first: int, last: int, *, forged: bool = False):
        if forged:
            message = (
                f"the seal at position {last} does not hold under this ledger's key: it was made "
                "by something other than the ledger (or with another key). Nothing was written. "
                "Restore the database from a backup taken before it (runbook: audit/docs.md, "
                "\"Unchained events\").")
        else:
            message = (
                f"positions {first}-{last} of the event log are chained but not sealed: they "
                "were written by something other than the ledger (it seals all it writes with "
                "its key, in the same transaction). Nothing was written. Review them (`claims "
                f"verify` names them), then either adopt them (`claims audit adopt --through "
                f"{last}`) or restore the database from a backup (runbook: audit/docs.md, "
                "\"Unchained events\").")
        super().__init__(message)
        self.first, self.last, self.forged = first, last, forged


class InputFileError(LedgerError):
    """A whole input file cannot be read (encoding, missing header, missing columns)."""

    def __init__(self, problem: Problem):
        super().__init__(problem.render())
        self.problem = problem


class KeyMismatchError(ConfigurationError):
    """The pseudonymisation key is not the one the ledger was first used with."""


class BatchInterruptedError(LedgerError):
    """The database failed while a file's batch was being written (connection lost, server shut
    down, disk full...): the batch's transaction did not commit, so nothing of the file is stored,
    unless ``uncertain`` (the failure came while committing: it may have committed). Ingesting
    the file again completes it or reports it already ingested.
    """

    def __init__(self, file: str, reason: str, *, uncertain: bool = False):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason
        self.uncertain = uncertain


class Problem(NamedTuple):
    """One problem in an input file: where and what. Never the row's text, which may hold a
    patient identifier in any cell (a quarantined row's text is sealed: ``ledger.quarantine``)."""

    file: str
    line: int
    column: str | None
    reason: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}"
        column = f" [{self.column}]" if self.column else ""
        return f"{where}:{column} {self.reason}"

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "reason": self.reason,
            "raw": None,  # kept for the --json contract: the text is sealed, never output
        }
