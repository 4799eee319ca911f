"""The ingest hot path's hand-built event JSON equals pydantic's serialisation, byte for byte."""

from __future__ import annotations

import json
from datetime import datetime
from uuid import uuid4

from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.decide import Known
from ledger.ingest import prepare
from ledger.ingest.events import T_CORRECTED, BatchEvents
from ledger.ingest.report import IngestReport
from ledger.ingest.routes import Routes
from ledger.ingest.rows import ENCOUNTER_COLUMNS, ENCOUNTER_SCHEMA, parse_row
from ledger.persistence import PydanticMapper, event_state
from ledger.vocabulary import PARIS

text = st.text(st.characters(blacklist_categories=("Cs", "Cf"), blacklist_characters=";\n\r\x00"),
               min_size=1, max_size=12).filter(lambda s: s.strip() != "")
moments = st.datetimes(min_value=datetime(2017, 1, 1), max_value=datetime(2026, 12, 31))


def _routes(header: list[str]) -> Routes:
    ctx = prepare.RowContext("encounters", tuple(header), frozenset(ENCOUNTER_COLUMNS), ";",
                             b"k" * 20)
    report = IngestReport("f.csv", "encounters", "0" * 64, uuid4(), "utf-8")
    events = BatchEvents(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=PARIS), "tester", "f.csv",
                         "0" * 64, uuid4())
    return Routes(None, ctx, events, report)


@settings(max_examples=300, deadline=None)
@given(ref=text, patient=text, invoice=st.one_of(st.just(""), text),
       performed=moments, delay=st.integers(0, 3000),
       origin=st.sampled_from(["SAS", "SOS", "C15"]), year=st.one_of(st.just(""),
                                                                   st.integers(1900, 2020)),
       extra=st.one_of(st.just(None), text))
def test_recorded_and_corrected_states_equal_pydantic_serialisation(
        ref: str, patient: str, invoice: str, performed: datetime, delay: int, origin: str,
        year: object, extra: str | None) -> None:
    regulated = performed.replace(second=0, microsecond=0)
    act = regulated.replace(minute=(regulated.minute + delay) % 60)
    if act < regulated or regulated.month in (3, 10):
        return  # keep to unambiguous, ordered times; DST is tested in test_values
    record = {"association": "SOS-13", "encounter_ref": ref, "regulation_origin": origin,
              "regulated_at": f"{regulated:%d/%m/%Y %H:%M}",
              "performed_at": f"{act:%Y-%m-%d %H:%M}", "act": "visit", "patient_ref": patient,
              "patient_birth_year": str(year), "doctor_rpps": "12345678901",
              "treating_doctor": "1", "pdsa": "0", "billed_codes": "VG+MD",
              "billed_amount": "35,5", "invoice_ref": invoice}
    if extra is not None:
        record["note"] = extra
    routes = _routes(list(record))
    _, problems = parse_row(ENCOUNTER_SCHEMA, record)
    assert problems == []
    fields = [record[h] for h in record]
    rows = prepare.prepare(routes.ctx, [(2, fields), (3, fields)])
    state: dict[bytes, Known] = {}
    events = list(routes._events(rows, state))
    assert len(events) == 1 and routes.report.unchanged == 1
    mapper = PydanticMapper(transcoder=None)  # type: ignore[arg-type]
    for e in events:
        stored = StoredEvent(e.originator_id, e.originator_version, e.topic, e.state)
        decoded = mapper.to_domain_event(stored)
        assert event_state(decoded) == e.state  # type: ignore[arg-type]
        assert mapper.to_stored_event(decoded).state == e.state
    # A correction of the same encounter, on top of the recorded state:
    changed = {**record, "billed_amount": "40,00"}
    (good,) = prepare.prepare(routes.ctx, [(4, list(changed.values()))])
    assert isinstance(good, prepare.Good)
    corrected = list(routes._events([good], state))
    assert corrected[0].topic == T_CORRECTED and corrected[0].originator_version == 2
    assert json.loads(corrected[0].state)["changed"] == ["billed_amount"]
    stored = StoredEvent(corrected[0].originator_id, 2, corrected[0].topic, corrected[0].state)
    assert event_state(mapper.to_domain_event(stored)) == corrected[0].state  # type: ignore[arg-type]
