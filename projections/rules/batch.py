"""The batch evaluator: a rule set compiled into ONE DuckDB SQL query over a facts relation.

The query follows the interpreter's steps (``interpreter``), stage by stage:

1. ``rs_cal``: calendar columns of each act (Paris date ``d_``, minute of day ``m_``, ISO day of
   week, Sunday-or-holiday ``sh_``, Saturday-afternoon option ``sa_``, PDSA hours ``ph_``),
   with the public holidays as a ``VALUES`` relation (``calendar.HOLIDAYS``);
2. ``rs_elig``: per rule id, whether its version in force that day has all its conditions
   (``conditions.conditions_sql``), and which version it is;
3. ``rs_kept``: exclusivity groups (a rule is dropped when a higher-priority rule of its group is
   eligible);
4. ``rs_cap``: weekly caps, ``row_number()`` per doctor and ISO week (Monday of the Paris date)
   ordered by ``(performed_at, encounter_ref, encounter_id)`` over the rows that kept the rule;
5. the lines: one ``(encounter_id, code, amount)`` per granted rule priced with a ``CASE`` over
   the parameter's effective dates (no value that day: no line).

The facts relation has the columns of ``projections.facts.FACT_COLUMNS``.
"""

from __future__ import annotations

from projections.rules.calendar import DAY_START, HOLIDAYS, NIGHT_START, saturday_from
from projections.rules.conditions import conditions_sql
from projections.rules.model import Parameter, Rule, RuleSet

MONEY = "DECIMAL(12,2)"


def _date(d: object) -> str:
    return f"DATE '{d}'"


def price_sql(parameter: Parameter) -> str:
    """A ``CASE`` giving the parameter's value on the Paris date ``d_`` (NULL when none)."""
    whens = []
    for entry in reversed(parameter.values):
        value = "NULL" if entry.value is None else f"'{entry.value}'"
        whens.append(f"WHEN d_ >= {_date(entry.effective_from)} THEN CAST({value} AS {MONEY})")
    return f"(CASE {' '.join(whens)} END)"


def _period_sql(rule: Rule) -> str:
    parts = []
    if rule.valid_from is not None:
        parts.append(f"d_ >= {_date(rule.valid_from)}")
    if rule.valid_until is not None:
        parts.append(f"d_ <= {_date(rule.valid_until)}")
    return " AND ".join(parts) or "true"


def _calendar_sql(rule_set: RuleSet, facts_relation: str) -> str:
    holidays = ", ".join(f"({_date(d)})" for d in HOLIDAYS)
    sat = saturday_from(rule_set.options)
    saturday = ("false" if sat is None else
                f"(dow_ = 6 AND NOT hol_ AND m_ >= {sat} AND m_ < {NIGHT_START})")
    return f"""
rs_hol(d) AS (VALUES {holidays}),
rs_base AS (
    SELECT f.encounter_id, f.encounter_ref, f.doctor_rpps, f.performed_at, f.association,
           f.performed_local,
           f.regulation_origin, f.act, f.delay_seconds, f.treating_doctor, f.pdsa,
           f.patient_birth_year,
           CAST(f.performed_local AS DATE) AS d_,
           hour(f.performed_local) * 60 + minute(f.performed_local) AS m_,
           isodow(f.performed_local) AS dow_,
           year(f.performed_local) AS y_,
           (h.d IS NOT NULL) AS hol_
    FROM {facts_relation} f LEFT JOIN rs_hol h ON h.d = CAST(f.performed_local AS DATE)
),
rs_day AS (
    SELECT *, (dow_ = 7 OR hol_) AS sh_, {saturday} AS sa_ FROM rs_base
),
rs_cal AS (
    SELECT *, (m_ >= {NIGHT_START} OR m_ < {DAY_START} OR sh_ OR sa_) AS ph_ FROM rs_day
)"""


def _stages_sql(rule_set: RuleSet) -> tuple[str, list[str]]:
    """The eligibility, exclusivity and cap stages; and per rule id the 'granted' expression."""
    ids = rule_set.rule_ids()
    col = {rid: i for i, rid in enumerate(ids)}
    elig, kept, caps, granted = [], [], [], []
    for rid in ids:
        i = col[rid]
        versions = [r for r in rule_set.rules if r.id == rid]
        cases = " ".join(f"WHEN {_period_sql(r)} THEN {conditions_sql(r.conditions)}"
                         for r in versions)
        which = " ".join(f"WHEN {_period_sql(r)} THEN {n}" for n, r in enumerate(versions))
        elig.append(f"(CASE {cases} ELSE false END) AS e_{i}, (CASE {which} END) AS v_{i}")
        group = rule_set.group_of(rid)
        higher = group.rules[:group.rules.index(rid)] if group else ()
        blocked = " OR ".join(f"e_{col[h]}" for h in higher)
        kept.append(f"(e_{i} AND NOT ({blocked})) AS k_{i}" if blocked else f"e_{i} AS k_{i}")
        cap = versions[0].weekly_cap
        if cap is None:
            granted.append(f"k_{i}")
        else:
            caps.append(f"CASE WHEN k_{i} THEN row_number() OVER (PARTITION BY doctor_rpps, "
                        f"date_trunc('week', d_), k_{i} ORDER BY performed_at, encounter_ref, "
                        f"encounter_id) END AS n_{i}")
            granted.append(f"(k_{i} AND n_{i} <= {cap})")
    stages = f"""
rs_elig AS (SELECT *, {', '.join(elig)} FROM rs_cal),
rs_kept AS (SELECT *, {', '.join(kept)} FROM rs_elig),
rs_cap AS (SELECT *{''.join(', ' + c for c in caps)} FROM rs_kept)"""
    return stages, granted


def payout_lines_sql(rule_set: RuleSet, facts_relation: str = "facts") -> str:
    """One DuckDB query giving every parameter line a rule set grants.

    Args:
        rule_set: the resolved rule set.
        facts_relation: a relation (table, view, CTE name or parenthesised query) with the
            columns of ``projections.facts.FACT_COLUMNS``.

    Returns:
        SQL text yielding rows ``(encounter_id VARCHAR, code VARCHAR, amount DECIMAL(12,2))``,
        one per granted line (encounters granted nothing have no row).
    """
    stages, granted = _stages_sql(rule_set)
    values = [f"({code}, CASE WHEN {granted[i]} THEN {price} END)"
              for i, (code, price) in enumerate(_code_prices(rule_set))]
    return f"""WITH {_calendar_sql(rule_set, facts_relation)},{stages}
SELECT c.encounter_id, l.code, CAST(l.amount AS {MONEY}) AS amount
FROM rs_cap c, LATERAL (VALUES {', '.join(values)}) AS l(code, amount)
WHERE l.amount IS NOT NULL"""


def payout_totals_sql(rule_set: RuleSet, facts_relation: str = "facts") -> str:
    """Each encounter's total payout with its association and Paris time, without a join.

    The granted prices are summed in one expression per encounter, so grouping the result
    (by association, month) needs no join back to the facts: the fast path of ``compare``.

    Returns:
        SQL text yielding ``(encounter_id, association, performed_local, amount)``, one row per
        fact (amount 0.00 when nothing is granted).
    """
    stages, granted = _stages_sql(rule_set)
    terms = " + ".join(f"(CASE WHEN {granted[i]} THEN coalesce({price}, 0) ELSE 0 END)"
                       for i, (_, price) in enumerate(_code_prices(rule_set)))
    return f"""WITH {_calendar_sql(rule_set, facts_relation)},{stages}
SELECT encounter_id, association, performed_local, CAST({terms or '0'} AS {MONEY}) AS amount
FROM rs_cap"""


def _code_prices(rule_set: RuleSet) -> list[tuple[str, str]]:
    """Per rule id (in order), the SQL of its code and of its price, by rule version."""
    out = []
    for i, rid in enumerate(rule_set.rule_ids()):
        versions = [r for r in rule_set.rules if r.id == rid]
        codes = {r.code for r in versions}
        if len(codes) == 1:
            code = f"'{versions[0].code}'"
            price = price_sql(rule_set.parameters[versions[0].code])
        else:
            code = "(CASE " + " ".join(f"WHEN v_{i} = {n} THEN '{r.code}'"
                                       for n, r in enumerate(versions)) + " END)"
            price = "(CASE " + " ".join(
                f"WHEN v_{i} = {n} THEN {price_sql(rule_set.parameters[r.code])}"
                for n, r in enumerate(versions)) + " END)"
        out.append((code, price))
    return out


def payout_sql(rule_set: RuleSet, facts_relation: str = "facts") -> str:
    """One DuckDB query giving each encounter's total payout (0.00 when nothing is granted).

    Args:
        rule_set: the resolved rule set.
        facts_relation: as for ``payout_lines_sql``.

    Returns:
        SQL text yielding rows ``(encounter_id VARCHAR, amount DECIMAL(12,2))``, one per fact.
    """
    return f"SELECT encounter_id, amount FROM ({payout_totals_sql(rule_set, facts_relation)})"
