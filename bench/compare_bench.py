"""Compare two rule sets over millions of encounters vs a hand-written DuckDB query.

``python -m bench.compare_bench [--size 3000000]``: synthesises one year (2023) of encounters,
turns the export into the facts relation (Parquet) with DuckDB, then times

- the ledger's ``projections.compare.compare(historical, parity, by association and month)``,
  which runs the compiled queries of both rule sets;
- a hand-written DuckDB query doing the same payout and group-by in one pass (2023 rules only),

checks that both give the same totals to the cent, and prints the times and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import holidays

from projections.compare import compare
from projections.rules.loader import load_rule_set

FACTS_FROM_CSV = """
COPY (
  WITH raw AS (
    SELECT association || '/' || encounter_ref AS encounter_id, association, encounter_ref,
           regulation_origin, act, doctor_rpps, treating_doctor = '1' AS treating_doctor,
           pdsa = '1' AS pdsa, TRY_CAST(patient_birth_year AS INTEGER) AS patient_birth_year,
           strptime(performed_at, '%d/%m/%Y %H:%M') AS performed_local,
           try_strptime(regulated_at, '%d/%m/%Y %H:%M') AS regulated_local
    FROM read_csv('{csv}', delim=';', header=true, all_varchar=true)
    WHERE try_strptime(performed_at, '%d/%m/%Y %H:%M') IS NOT NULL
      AND regulation_origin IN ('SAS', 'SOS', 'C15', 'NONE') AND doctor_rpps ~ '^[0-9]{{11}}$'
  )
  SELECT encounter_id, association, encounter_ref, regulation_origin, act, doctor_rpps,
         treating_doctor, pdsa, patient_birth_year,
         timezone('Europe/Paris', performed_local) AS performed_at, performed_local,
         CAST(epoch(timezone('Europe/Paris', performed_local))
              - epoch(timezone('Europe/Paris', regulated_local)) AS BIGINT) AS delay_seconds
  FROM raw
) TO '{out}' (FORMAT parquet)
"""


def hand_written(parquet: Path, rs: Any) -> str:
    """Both rule sets' payouts for 2023, written by hand (the baseline)."""
    def v(code: str, day: date = date(2023, 6, 1)) -> str:
        return str(rs.value_at(code, day).value)

    days = ", ".join(f"DATE '{d}'" for d in sorted(holidays.France(years=2023)))
    return f"""
    WITH f AS (
      SELECT *, hour(performed_local) AS h,
             (isodow(performed_local) = 7 OR CAST(performed_local AS DATE) IN ({days})) AS sun
      FROM read_parquet('{parquet}')),
    g AS (
      SELECT *, (sun OR h < 8 OR h >= 20) AS pdsa_hours,
             (pdsa AND regulation_origin IN ('SAS', 'SOS', 'C15')) AS pdsa_reg,
             CASE WHEN CAST(performed_local AS DATE) >= DATE '2023-11-01' THEN {v('G', date(2023, 11, 1))}
                  ELSE {v('G', date(2023, 6, 1))} END AS base_fee
      FROM f),
    lines AS (
      SELECT *,
        base_fee
        + CASE WHEN act = 'visit' THEN
            CASE WHEN pdsa_reg AND (h >= 20 OR (h >= 6 AND h < 8)) THEN {v('VRN')}
                 WHEN pdsa_reg AND h < 6 THEN {v('VRM')}
                 WHEN pdsa_reg AND sun AND h >= 8 AND h < 20 THEN {v('VRD')}
                 ELSE {v('MD')} END
          ELSE
            CASE WHEN pdsa_reg AND (h >= 20 OR (h >= 6 AND h < 8)) THEN {v('CRN')}
                 WHEN pdsa_reg AND h < 6 THEN {v('CRM')}
                 WHEN pdsa_reg AND sun AND h >= 8 AND h < 20 THEN {v('CRD')}
                 ELSE 0 END
          END
        + CASE WHEN patient_birth_year IS NOT NULL
                    AND year(performed_local) - patient_birth_year < 6 THEN {v('MEG')} ELSE 0 END
        + CASE WHEN regulation_origin = 'C15' AND treating_doctor AND NOT pdsa AND NOT pdsa_hours
                    AND delay_seconds >= 0 THEN {v('MRT')} ELSE 0 END
          AS fixed,
        (delay_seconds BETWEEN 0 AND 172800 AND NOT treating_doctor AND NOT pdsa
         AND NOT pdsa_hours) AS snp_ok
      FROM g),
    snp AS (
      SELECT *,
        CASE WHEN snp_ok AND regulation_origin IN ('SAS', 'C15') THEN row_number() OVER (
          PARTITION BY doctor_rpps, yearweek(performed_local),
                       snp_ok AND regulation_origin IN ('SAS', 'C15')
          ORDER BY performed_at, encounter_ref, encounter_id) END AS rank_hist,
        CASE WHEN snp_ok AND regulation_origin IN ('SAS', 'C15', 'SOS') THEN row_number() OVER (
          PARTITION BY doctor_rpps, yearweek(performed_local),
                       snp_ok AND regulation_origin IN ('SAS', 'C15', 'SOS')
          ORDER BY performed_at, encounter_ref, encounter_id) END AS rank_par
      FROM lines)
    SELECT association, strftime(performed_local, '%Y-%m') AS month, count(*) AS encounters,
           sum(fixed + CASE WHEN rank_hist <= 20 THEN {v('SNP')} ELSE 0 END) AS base_total,
           sum(fixed + CASE WHEN rank_par <= 20 THEN {v('SNP')} ELSE 0 END) AS alt_total
    FROM snp GROUP BY 1, 2 ORDER BY 1, 2"""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare_bench", description=__doc__)
    parser.add_argument("--size", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (best is kept)")
    args = parser.parse_args()
    from ledger.synth import generate

    with tempfile.TemporaryDirectory(prefix="claims-compare-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        result = generate(work / "data", associations=64, start=date(2023, 1, 1),
                          end=date(2023, 12, 31), encounters=args.size, seed=11)
        parquet = work / "facts.parquet"
        with duckdb.connect() as duck:
            duck.execute(FACTS_FROM_CSV.format(csv=result.encounters_path, out=parquet))
            n = duck.execute(f"SELECT count(*) FROM '{parquet}'").fetchone()[0]  # type: ignore[index]
        print(f"# {n:,} encounters (2023, 64 associations), data ready in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        base, alt = load_rule_set("historical"), load_rule_set("parity")
        ours, theirs = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            res = compare(parquet, base, alt, ("association", "month"))
            ours.append(time.perf_counter() - t)
            with duckdb.connect() as duck:
                duck.execute("SET TimeZone = 'UTC'")
                t = time.perf_counter()
                rows = duck.execute(hand_written(parquet, base)).fetchall()
                theirs.append(time.perf_counter() - t)
        hand_base = sum((Decimal(r[3]) for r in rows), Decimal(0))
        hand_alt = sum((Decimal(r[4]) for r in rows), Decimal(0))
        same = (hand_base == res.totals["base_total"] and hand_alt == res.totals["alt_total"]
                and len(rows) == len(res.rows))
        print(f"totals: ledger {res.totals['base_total']} / {res.totals['alt_total']} €, "
              f"hand-written {hand_base:.2f} / {hand_alt:.2f} € -> "
              f"{'identical' if same else 'DIFFERENT'}")
        print(f"compare (ledger, compiled rule sets) {min(ours):6.2f} s  vs hand-written DuckDB "
              f"{min(theirs):6.2f} s  ratio {min(ours) / min(theirs):.2f}x "
              f"({n / min(ours):,.0f} encounters/s)")


if __name__ == "__main__":
    main()
