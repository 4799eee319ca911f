"""The condition language of ``rules.yaml``: a closed set of keys, each defined once.

Every key has three faces kept side by side so that the two evaluators share one meaning:
``parse`` (check and normalise the YAML value), ``test`` (the interpreter: None when the
condition holds, else the reason it does not) and ``sql`` (the batch evaluator: a boolean SQL
expression over the staged facts, see ``batch``). Unknown facts (NULL/None) never satisfy a
condition. There is no expression language and nothing is ever evaluated as code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from ledger.vocabulary import ACTS, ORIGINS
from projections.facts import EncounterFacts
from projections.rules.calendar import Moment, hhmm, parse_hhmm

Test = Callable[[EncounterFacts, Moment, Any], "str | None"]


@dataclass(frozen=True)
class Condition:
    """One condition key: its documentation and its three faces."""

    key: str
    doc: str
    parse: Callable[[Any], Any]
    test: Test
    sql: Callable[[Any], str]


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _strict_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _choice_list(allowed: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
    def parse(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise ValueError(f"expected a non-empty list among {list(allowed)}")
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ValueError(f"unknown value(s) {bad}; allowed: {list(allowed)}")
        if len(set(value)) != len(value):
            raise ValueError(f"repeated value in {list(value)}")
        return tuple(value)
    return parse


def _time_ranges(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of {from: 'HH:MM', to: 'HH:MM'}")
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"from", "to"}:
            raise ValueError("each time range is {from: 'HH:MM', to: 'HH:MM'}")
        start, end = parse_hhmm(str(item["from"])), parse_hhmm(str(item["to"]))
        if not start < end:
            raise ValueError(f"time range {item['from']}–{item['to']} is empty: split it at 24:00")
        out.append((hhmm(start), hhmm(end)))
    return tuple(out)


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _duration(seconds: int) -> str:
    sign, s = ("-", -seconds) if seconds < 0 else ("", seconds)
    return f"{sign}{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"


def _origin(f: EncounterFacts, m: Moment, v: tuple[str, ...]) -> str | None:
    return None if f.regulation_origin in v else f"origin {f.regulation_origin} not in [{', '.join(v)}]"


def _act(f: EncounterFacts, m: Moment, v: tuple[str, ...]) -> str | None:
    return None if f.act in v else f"act {f.act} not in [{', '.join(v)}]"


def elapsed_seconds(f: EncounterFacts) -> int | None:
    """Seconds from regulation to act, true elapsed time (truncated), None when not regulated.

    Computed on UTC instants: ``EncounterFacts.delay_seconds`` subtracts two datetimes that
    share the Paris tzinfo, which Python does on wall-clock time (an hour off across DST).
    """
    if f.regulated_at is None:
        return None
    return int((f.performed_at.astimezone(UTC) - f.regulated_at.astimezone(UTC)).total_seconds())


def _delay_max(f: EncounterFacts, m: Moment, v: int) -> str | None:
    d = elapsed_seconds(f)
    if d is None:
        return "no regulation time"
    return None if d <= v else f"delay {_duration(d)} after regulation exceeds {_duration(v)}"


def _delay_min(f: EncounterFacts, m: Moment, v: int) -> str | None:
    d = elapsed_seconds(f)
    if d is None:
        return "no regulation time"
    return None if d >= v else f"delay {_duration(d)} after regulation is below {_duration(v)}"


def _flag(name: str, yes: str, no: str) -> Test:
    def test(f: EncounterFacts, m: Moment, v: bool) -> str | None:
        got = getattr(f, name)
        if got is None:
            return f"{name} unknown"
        if got is v:
            return None
        return yes if got else no
    return test


def _pdsa_hours(f: EncounterFacts, m: Moment, v: bool) -> str | None:
    if m.pdsa_hours is v:
        return None
    return f"{m.describe()} is {'in' if m.pdsa_hours else 'outside'} PDSA hours"


def _local_time(f: EncounterFacts, m: Moment, v: tuple[tuple[str, str], ...]) -> str | None:
    if any(parse_hhmm(a) <= m.minute < parse_hhmm(b) for a, b in v):
        return None
    return f"time {hhmm(m.minute)} not in {', '.join(f'{a}–{b}' for a, b in v)}"


def _sunday(f: EncounterFacts, m: Moment, v: bool) -> str | None:
    if m.sunday_or_holiday is v:
        return None
    return (f"{m.describe()} is a Sunday or public holiday" if m.sunday_or_holiday
            else f"{m.describe()} is not a Sunday or public holiday")


def _saturday(f: EncounterFacts, m: Moment, v: bool) -> str | None:
    if m.saturday_afternoon is v:
        return None
    return (f"{m.describe()} is a Saturday afternoon in PDSA hours" if m.saturday_afternoon
            else f"{m.describe()} is not a Saturday afternoon in PDSA hours (rule-set option)")


def _age_below(f: EncounterFacts, m: Moment, v: int) -> str | None:
    if f.patient_birth_year is None:
        return "patient birth year unknown"
    age = m.day.year - f.patient_birth_year
    return None if age < v else f"patient age {age} (act year − birth year) is not below {v}"


def _ranges_sql(v: tuple[tuple[str, str], ...]) -> str:
    return "(" + " OR ".join(f"(m_ >= {parse_hhmm(a)} AND m_ < {parse_hhmm(b)})" for a, b in v) + ")"


def _bool_sql(column: str) -> Callable[[bool], str]:
    return lambda v: f"{column} = {'true' if v else 'false'}"


CONDITIONS: dict[str, Condition] = {c.key: c for c in (
    Condition("origin_in", "regulation origin is one of the listed origins (SAS, SOS, C15, NONE)",
              _choice_list(ORIGINS), _origin, lambda v: f"regulation_origin IN ({_sql_list(v)})"),
    Condition("act_in", "act is one of the listed kinds (consultation, visit)",
              _choice_list(ACTS), _act, lambda v: f"act IN ({_sql_list(v)})"),
    Condition("delay_seconds_max", "regulated, and the act at most N seconds after regulation",
              _strict_int, _delay_max, lambda v: f"delay_seconds <= {int(v)}"),
    Condition("delay_seconds_min", "regulated, and the act at least N seconds after regulation",
              _strict_int, _delay_min, lambda v: f"delay_seconds >= {int(v)}"),
    Condition("treating_doctor", "the doctor is (true) / is not (false) the treating doctor",
              _strict_bool, _flag("treating_doctor", "the doctor is the patient's treating doctor",
                                  "the doctor is not the patient's treating doctor"),
              _bool_sql("treating_doctor")),
    Condition("pdsa_flag", "the export's PDSA flag is set (true) / not set (false)",
              _strict_bool, _flag("pdsa", "PDSA flag set", "PDSA flag not set"),
              _bool_sql("pdsa")),
    Condition("pdsa_hours", "the act is in (true) / outside (false) PDSA hours (calendar.py)",
              _strict_bool, _pdsa_hours, _bool_sql("ph_")),
    Condition("local_time_in", "Paris time of the act in one of the ranges [from, to)",
              _time_ranges, _local_time, _ranges_sql),
    Condition("sunday_or_holiday", "the act's Paris date is (not) a Sunday or public holiday",
              _strict_bool, _sunday, _bool_sql("sh_")),
    Condition("saturday_afternoon", "Saturday (not a holiday) from the option's hour to 20:00",
              _strict_bool, _saturday, _bool_sql("sa_")),
    Condition("age_below", "patient age (act year − birth year) below N years",
              _strict_int, _age_below, lambda v: f"(y_ - patient_birth_year) < {int(v)}"),
)}


def first_failure(conditions: tuple[tuple[str, Any], ...], facts: EncounterFacts,
                  when: Moment) -> str | None:
    """The reason the first failing condition gives, or None when all hold.

    Args:
        conditions: a rule's ``(key, parsed value)`` pairs, in file order.
        facts: the encounter.
        when: its calendar facts.

    Returns:
        None if every condition holds, else the first failing condition's reason.
    """
    for key, value in conditions:
        reason = CONDITIONS[key].test(facts, when, value)
        if reason is not None:
            return reason
    return None


def conditions_sql(conditions: tuple[tuple[str, Any], ...]) -> str:
    """The conjunction of a rule's conditions as SQL (NULL facts count as false)."""
    if not conditions:
        return "true"
    return "coalesce(" + " AND ".join(f"({CONDITIONS[k].sql(v)})" for k, v in conditions) + ", false)"
