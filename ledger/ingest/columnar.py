"""The ingest's fast path: DuckDB parses, validates, pseudonymises and encodes a block of lines at
once, and the block comes back framed as binary COPY rows, ready for ``EventWriter.append_framed``.

It is an accelerator, not a second parser: a line is taken only in the plain shape of the
canonical export (``block_sql``); any other line is prepared by the row-by-row preparer
(``prepare``), which alone writes the messages of bad rows. A block whose lines are all taken
but bad ones, with distinct ids, comes back ``Framed``; any other block comes back None, for the
plain route. For the rows it takes, the fast path gives the bytes the plain route gives (the
aggregate id, the pseudonym, the payload and its SHA-256, the whole event state:
``tests/unit/test_columnar.py``).

DuckDB's vectorised string, regex and hash functions run without the GIL, so the next block is
prepared in a background thread while the main thread writes the one before.
"""

from __future__ import annotations

import heapq
from functools import cached_property
from typing import Any
from uuid import UUID

import duckdb
import numpy as np
import orjson

from ledger import domain, lookups, pseudonym, store
from ledger.ingest import prepare, reader
from ledger.ingest.block_sql import (
    DATE_FORMATS,
    DATETIME_FORMATS,
    cells_sql,
    instant,
    paris_offset_macro,
    parsed,
    payload_sql,
    q,
    state_sql,
)
from ledger.ingest.events import T_DECIDED, T_RECORDED, BatchEvents


class Framed:
    """A block the fast path took whole, bad rows aside, ids distinct: its events framed as
    binary COPY rows (``store.frame_states``: ``Recorded`` for encounters, ``Decided`` for
    decisions), versions and positions left for the writer.

    Args:
        topic: the rows' topic.
        lines: the line of each framed row (int64).
        rows: the COPY rows, one after the other.
        ends: the offset just past each row (int64).
        bad: the block's bad rows, for the quarantine.
        shas: decisions: each decision's SHA-256 (hex).
        refs: decisions: each row's "ASSOCIATION/REF", for messages.

    ``ahead`` is set for a block of decisions whose lookup was read ahead (``known.decisions``
    on a connection that sees the ledger as it was before the batch).
    """

    ahead: Any = None

    def __init__(self, topic: str, lines: np.ndarray, rows: bytearray, ends: np.ndarray,
                 bad: list[prepare.Bad], shas: np.ndarray | None = None,
                 refs: np.ndarray | None = None):
        self.topic, self.lines, self.rows, self.ends, self.bad = topic, lines, rows, ends, bad
        self.shas, self.refs = shas, refs

    @cached_property
    def ids(self) -> lookups.Ids:
        """The rows' ids, for a lookup."""
        return lookups.Ids(store.framed_id_bytes(self.rows, self.ends))

    def __len__(self) -> int:
        return len(self.lines) + len(self.bad)

    def one_by_one(self) -> list[prepare.Good | prepare.Bad]:
        """The block's rows as the row-by-row preparer gives them, in line order (for the plain
        route, when the ledger's state keeps the block from being written whole): each taken
        row read back from its framed state, without preparing it again."""
        good: list[prepare.Good | prepare.Bad] = []
        field = "facts" if self.topic == T_RECORDED else "decision"
        refs = self.refs.tolist() if self.refs is not None else None
        for i, (line, (oid, state)) in enumerate(zip(
                self.lines.tolist(), store.framed_events(self.rows, self.ends, self.topic),
                strict=True)):
            data = orjson.loads(state)
            payload = data[field]
            ref = refs[i] if refs is not None else (
                f"{payload['association']}/{payload['encounter_ref']}")
            good.append(prepare.Good(line, UUID(bytes=oid), ref, False,
                                     orjson.dumps(payload).decode("utf-8"),
                                     data[f"{field}_sha256"], data["effective_at"], {}))
        return list(heapq.merge(good, self.bad, key=lambda r: r.line))


class BlockPreparer:
    """Prepares blocks of lines of one file (its header, separator and batch fixed)."""

    def __init__(self, ctx: prepare.RowContext, events: BatchEvents):
        self.ctx = ctx
        # A block's working set fits; more lets DuckDB's allocator keep what it no longer uses.
        self.db = duckdb.connect(config={"threads": 1, "memory_limit": "64MB"})
        self.db.execute(paris_offset_macro())
        ipad, opad = pseudonym.hmac_pads(ctx.key)
        encounters = ctx.kind == "encounters"
        self.topic = T_RECORDED if encounters else T_DECIDED
        self.sql = _encounters_sql(ctx) if encounters else _decisions_sql(ctx)
        before, after, tail = store.frame_parts(self.topic)
        params: dict[str, Any] = {
            "ns": domain.NAMESPACE.bytes, "ipad": ipad, "opad": opad,
            "prov_before": events.provenance_prefix, "prov_after": events.provenance_suffix,
            "frame_before": before, "frame_after": after, "frame_tail": tail,
            **{f"head_{k}": v for k, v in events.head.items()},
        }
        self.params = {k: v for k, v in params.items() if f"${k}" in self.sql}

    def close(self) -> None:
        self.db.close()

    def __call__(self, text: str, first_line: int) -> Framed | None:
        """The block of ``text`` (whole lines without a quote character, the first at
        ``first_line``) framed, or None if the plain route must take it."""
        result = self.db.execute(self.sql, {**self.params, "text": text, "base": first_line})
        taken = result.fetchnumpy()
        lines = taken["line"]
        bad: list[prepare.Bad] = []
        count = text.count("\n") + (not text.endswith("\n") and text != "")
        if len(lines) != count:  # lines left out: bad or blank, else not framed
            every = text.split("\n")
            left = np.setdiff1d(np.arange(first_line, first_line + count), lines)
            for line in left.tolist():
                record = reader.parse_record(line, every[line - first_line] + "\n",
                                             self.ctx.separator)
                if record is None:
                    continue
                (row,) = prepare.prepare(self.ctx, [record])
                if not isinstance(row, prepare.Bad):
                    return None
                bad.append(row)
        framed = taken["row"]
        rows = bytearray().join(framed)
        ends = np.cumsum(np.fromiter(map(len, framed), np.int64, len(framed)))
        ids = np.frombuffer(store.framed_id_bytes(rows, ends), "V16")
        if len(np.unique(ids)) != len(lines):
            return None  # an encounter twice in the block: its rows depend on each other
        if self.topic == T_RECORDED:
            return Framed(self.topic, lines, rows, ends, bad)
        return Framed(self.topic, lines, rows, ends, bad, taken["sha"], taken["ref"])


#: uuid5(NAMESPACE, "encounter:<association>\x1f<ref>") (``domain.encounter_id``) from ``h``, the
#: SHA-1 (hex) of namespace and name: version 5 and the RFC 4122 variant set.
_VARIANT = "substr('89ab89ab89ab89ab', strpos('0123456789abcdef', substr(h, 17, 1)), 1)"
_OID = ("unhex(concat(substr(h, 1, 12), '5', substr(h, 14, 3), " + _VARIANT
        + ", substr(h, 18, 15)))")
_SHA1_OF_NAME = ("sha1($ns || encode('encounter:') "
                 "|| encode(concat(association, chr(31), encounter_ref)))")
_PSEUDONYM = (f"concat({q(pseudonym.PREFIX)}, left(sha256($opad || unhex(sha256($ipad || "
              f"encode(patient_ref)))), {pseudonym.HEX_DIGITS}))")
_HEAD = {"timestamp": "$head_timestamp", "actor": "$head_actor",
         "originator_topic": "$head_originator_topic"}
_PROVENANCE = "concat($prov_before, CAST(line AS VARCHAR), $prov_after)"
#: The taken row's event framed as a COPY row, as ``store.frame_states`` frames it.
_ROW = ("$frame_before || oid || $frame_after || unhex(lpad(to_hex(octet_length(state)), 8, '0')) "
        "|| state || $frame_tail AS row")


def _framing_sql(event: type[Any], field: str, typed: str, checks: tuple[str, ...],
                 payload: str, effective: str, extra: str = "") -> str:
    """The query of a block's taken rows: line, id, whole event state (and ``extra``), from the
    query of its typed cells, the rows that pass ``checks``."""
    ok = " AND ".join(f"({c})" for c in checks)
    state = state_sql(event, {**_HEAD, "effective_at": "concat('\"', effective, '\"')",
                              field: "payload", f"{field}_sha256": "concat('\"', sha, '\"')",
                              "provenance": _PROVENANCE})
    return f"""
        SELECT line, {_ROW}{extra}
        FROM (SELECT *, {_OID} AS oid, {state} AS state
        FROM (SELECT *, sha256(payload) AS sha
              FROM (SELECT line, {_SHA1_OF_NAME} AS h, association, encounter_ref,
                           {payload} AS payload, {effective} AS effective
                    FROM ({typed}) WHERE coalesce({ok}, false))))"""


def _encounters_sql(ctx: prepare.RowContext) -> str:
    iso = q("%Y-%m-%dT%H:%M:%S")
    typed = f"""
        SELECT *, paris_offset(reg_local, year(reg_ts)) AS reg_off,
               paris_offset(perf_local, year(perf_ts)) AS perf_off
        FROM (SELECT *, strftime(reg_ts, {iso}) AS reg_local,
                     strftime(perf_ts, {iso}) AS perf_local
              FROM (SELECT *, {parsed('regulated_at', DATETIME_FORMATS)} AS reg_ts,
                           {parsed('performed_at', DATETIME_FORMATS)} AS perf_ts
                    FROM ({cells_sql(ctx)})))"""
    checks = (
        "regulated_at = '' OR (reg_ts IS NOT NULL AND reg_off IS NOT NULL)",
        "perf_ts IS NOT NULL AND perf_off IS NOT NULL",
        "patient_birth_year = '' OR try_cast(patient_birth_year AS INT) BETWEEN 1890 AND 2100",
        # The checks across columns (``rows``): an origin needs a time, no act before it.
        "upper(regulation_origin) = 'NONE' OR regulated_at <> ''",
        f"regulated_at = '' OR CASE WHEN reg_off = perf_off THEN reg_ts <= perf_ts "
        f"ELSE {instant('reg_ts', 'reg_off')} <= {instant('perf_ts', 'perf_off')} END",
        "lower(status) <> 'void'",  # voids are rare: the plain route builds them
    )
    payload = payload_sql(domain.EncounterFacts, {
        "regulation_origin": "upper(regulation_origin)",
        "regulated_at": "CASE WHEN reg_local IS NULL THEN 'null' "
                        "ELSE concat('\"', reg_local, reg_off, '\"') END",
        "performed_at": "concat(perf_local, perf_off)",
        "act": "lower(act)",
        "patient_pseudonym": _PSEUDONYM,
    })
    return _framing_sql(domain.Encounter.Recorded, "facts", typed, checks, payload,
                        "concat(perf_local, perf_off)")


def _decisions_sql(ctx: prepare.RowContext) -> str:
    typed = f"""
        SELECT *, paris_offset(concat(day, 'T00:00:00'), year(decided)) AS day_off
        FROM (SELECT *, strftime(decided, '%Y-%m-%d') AS day
              FROM (SELECT *, {parsed('decided_at', DATE_FORMATS)} AS decided
                    FROM ({cells_sql(ctx)})))"""
    payload = payload_sql(domain.Decision, {"decided_at": "day"})
    return _framing_sql(domain.Encounter.Decided, "decision", typed,
                        ("decided IS NOT NULL", "day_off IS NOT NULL"), payload,
                        "concat(day, 'T00:00:00', day_off)",
                        ", sha, concat(association, '/', encounter_ref) AS ref")
