"""The baselines the ledger is measured against, each on the same rows as the ledger's own path.

- ``raw_copy``: COPY (binary) of the already-stored event rows into a table of the same shape and
  indexes: the ceiling for writing these rows at all.
- ``library_save``: ``Application.save`` of ready-made aggregates, 300 per call (larger saves can
  hang in the library's pipeline mode, see design.md).
- ``library_select_decode``: the library's notification log read plus the mapper's decode.
- ``library_projection_runner``: the library's ``ProjectionRunner`` (one transaction per event).
"""

from __future__ import annotations

import io
import time
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from psycopg.sql import SQL

from ledger.application import EVENTS_TABLE, ClaimsLedger
from ledger.domain import Encounter
from ops.database import Connection

SAVE_BATCH = 300


def raw_copy(conn_info: Connection) -> tuple[int, float]:
    """Rows/s of a binary COPY of the stored event rows into an identical table."""
    with conn_info.connect() as conn:
        buffer = io.BytesIO()
        with conn.cursor().copy(f"COPY {EVENTS_TABLE} TO STDOUT (FORMAT BINARY)") as copy:
            for block in copy:
                buffer.write(block)
        conn.execute("DROP TABLE IF EXISTS copy_baseline")
        conn.execute(f"CREATE TABLE copy_baseline (LIKE {EVENTS_TABLE} INCLUDING ALL)")
        data = buffer.getvalue()
        started = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(
                "COPY copy_baseline FROM STDIN (FORMAT BINARY)") as copy:
            for i in range(0, len(data), 1 << 20):
                copy.write(data[i:i + (1 << 20)])
        elapsed = time.perf_counter() - started
        counted = conn.execute("SELECT count(*) FROM copy_baseline").fetchone()
        rows = int(counted[0]) if counted else 0
        conn.execute("DROP TABLE copy_baseline")
    return rows, elapsed


def library_save(source: Connection, target: Connection, limit: int) -> tuple[int, float]:
    """Events/s of ``Application.save`` for the first ``limit`` encounters, ready-made."""
    reader = ClaimsLedger(env=source.library_env())
    aggregates = []
    try:
        for n in reader.recorder.select_notifications(
                start=1, limit=limit + 1, topics=[_topic(Encounter.Recorded)]):
            event: Any = reader.mapper.to_domain_event(n)
            aggregates.append(Encounter(facts=event.facts, facts_sha256=event.facts_sha256,
                                        provenance=event.provenance,
                                        effective_at=event.effective_at))
    finally:
        reader.close()
    app = ClaimsLedger(env=target.library_env())
    try:
        started = time.perf_counter()
        for i in range(0, len(aggregates), SAVE_BATCH):
            app.save(*aggregates[i:i + SAVE_BATCH])
        return len(aggregates), time.perf_counter() - started
    finally:
        app.close()


def library_select_decode(conn_info: Connection) -> tuple[int, float]:
    """Events/s of reading the whole notification log and decoding every event."""
    app = ClaimsLedger(env=conn_info.library_env())
    count = 0
    try:
        started = time.perf_counter()
        start = 1
        while True:
            batch = app.recorder.select_notifications(start=start, limit=1000)
            if not batch:
                break
            for n in batch:
                app.mapper.to_domain_event(n)
            count += len(batch)
            start = batch[-1].id + 1
        return count, time.perf_counter() - started
    finally:
        app.close()


def _topic(cls: type) -> str:
    from eventsourcing.utils import get_topic

    return get_topic(cls)


class FactsView(PostgresTrackingRecorder):
    """A minimal facts view for the library's runner: one row per recorded encounter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        create = SQL("CREATE TABLE IF NOT EXISTS bench_runner_facts (id uuid PRIMARY KEY, facts jsonb)")
        self.sql_create_statements.append(create.format())

    def insert_fact(self, encounter_id: Any, facts: str, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("INSERT INTO bench_runner_facts VALUES (%s, %s)", (encounter_id, facts))
            self._insert_tracking(curs, tracking)


class FactsProjection(Projection[FactsView]):
    name = "benchfacts"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:  # type: ignore[override]
        if isinstance(domain_event, Encounter.Recorded):
            self.view.insert_fact(domain_event.originator_id,
                                  domain_event.facts.model_dump_json(), tracking)
        else:
            self.view.insert_tracking(tracking)


def library_projection_runner(conn_info: Connection, limit: int) -> tuple[int, float]:
    """Events/s of the library's ``ProjectionRunner`` over the first ``limit`` events."""
    env = {**conn_info.library_env(), **conn_info.library_env(prefix="BENCHFACTS_")}
    started = time.perf_counter()
    with ProjectionRunner(application_class=ClaimsLedger, projection_class=FactsProjection,
                          view_class=FactsView, env=env) as runner:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = runner.view.max_tracking_id(ClaimsLedger.name) or 0
            if done >= limit:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        done = runner.view.max_tracking_id(ClaimsLedger.name) or 0
    return done, elapsed
