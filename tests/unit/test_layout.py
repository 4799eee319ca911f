"""Each encoder derived from ``ledger.layout`` writes what pydantic writes, byte for byte."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import domain, layout
from ledger.persistence import event_state

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
moments = st.builds(lambda d, m: d.replace(tzinfo=timezone(timedelta(minutes=m))),
                    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)),
                    st.sampled_from([0, 60, 120, -300]))
money = st.decimals(0, 10**6, places=2)
codes = st.lists(st.sampled_from(["G", "VG", "MD", "SNP"]), max_size=4).map(tuple)

facts = st.fixed_dictionaries({
    "association": texts, "encounter_ref": texts,
    "regulation_origin": st.sampled_from(["SAS", "SOS", "C15", "NONE"]),
    "regulated_at": st.one_of(st.none(), moments), "performed_at": moments,
    "act": st.sampled_from(["consultation", "visit"]), "patient_pseudonym": texts,
    "patient_birth_year": st.one_of(st.none(), st.integers(1890, 2100)),
    "doctor_rpps": texts, "treating_doctor": st.booleans(), "pdsa": st.booleans(),
    "billed_codes": codes, "billed_amount": money,
    "invoice_ref": st.one_of(st.none(), texts)})
decisions = st.fixed_dictionaries({
    "decided_at": st.dates(date(2000, 1, 1), date(2099, 12, 31)), "paid_amount": money,
    "paid_codes": codes, "rejected_codes": codes, "reason": st.one_of(st.none(), texts)})


@settings(max_examples=300, deadline=None)
@given(values=facts)
def test_facts_json_is_pydantics(values: dict[str, object]) -> None:
    model = domain.EncounterFacts(**values)  # type: ignore[arg-type]
    assert layout.to_json(domain.EncounterFacts, values) == model.model_dump_json()


@settings(max_examples=200, deadline=None)
@given(values=decisions)
def test_decision_json_is_pydantics(values: dict[str, object]) -> None:
    model = domain.Decision(**values)  # type: ignore[arg-type]
    assert layout.to_json(domain.Decision, values) == model.model_dump_json()


def test_provenance_and_utc_times_are_pydantics() -> None:
    values = {"file_name": "é.csv", "file_sha256": "0" * 64, "line": 7,
              "batch_id": UUID(int=5), "extra": {"note": "x"}}
    assert (layout.to_json(domain.Provenance, values)
            == domain.Provenance(**values).model_dump_json())  # type: ignore[arg-type]
    assert layout.iso(datetime(2023, 1, 1, tzinfo=UTC)) == "2023-01-01T00:00:00Z"


def test_state_keys_are_the_stored_states_keys() -> None:
    import json

    event = domain.Encounter.Voided(
        originator_id=UUID(int=1), originator_version=2, timestamp=datetime(2023, 1, 1, tzinfo=UTC),
        actor="a", effective_at=datetime(2023, 1, 1, tzinfo=UTC), reason="r",
        provenance=domain.Provenance(file_name="f", file_sha256="0", line=1, batch_id=UUID(int=3)))
    assert tuple(json.loads(event_state(event))) == layout.state_keys(domain.Encounter.Voided)
    parts = {k: json.dumps(v, separators=(",", ":"), ensure_ascii=False)
             for k, v in json.loads(event_state(event)).items()}
    assert layout.state_json(domain.Encounter.Voided, parts).encode() == event_state(event)


def test_record_columns_follow_the_model() -> None:
    columns = layout.record_columns(domain.EncounterFacts)
    assert columns.startswith("association text, encounter_ref text, regulation_origin text, "
                              "regulated_at timestamptz")
    assert "billed_codes text[], billed_amount numeric, invoice_ref text" in columns
    assert [f.name for f in layout.fields(domain.Decision)] == list(domain.Decision.model_fields)


def test_a_field_left_out_takes_its_models_default() -> None:
    values = {"decided_at": date(2023, 1, 2), "paid_amount": Decimal("1.50")}
    assert layout.to_json(domain.Decision, values) == domain.Decision(**values).model_dump_json()
