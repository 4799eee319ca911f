"""The synthetic exports follow the canonical format, stream, and are reproducible."""

from __future__ import annotations

import re
import subprocess
import sys
import tracemalloc
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.ingest.rows import DECISION_SCHEMA, ENCOUNTER_SCHEMA, RowParser
from ledger.synth import (
    CORRECTION_COLUMNS,
    DECISION_COLUMNS,
    ENCOUNTER_COLUMNS,
    generate,
    planned_rows,
)
from ledger.synth.bad import KINDS
from ledger.synth.tariffs import amount, base_period
from tests.unit.synth.conftest import TIME, Run

AMOUNT = re.compile(r"^\d+,\d{2}$")
# The column each kind of bad row breaks, as the ingest reports it.
BAD_COLUMN = {"bad_date": "performed_at", "unknown_origin": "regulation_origin",
              "negative_amount": "billed_amount", "missing_required": "patient_ref",
              "malformed_rpps": "doctor_rpps"}


def checker(schema: tuple, header: list[str]) -> Callable[[dict[str, str]], list]:
    """The ingest's problems with a row of a file with this header."""
    parse = RowParser(schema, header)
    return lambda row: parse([row[h] for h in header])[1]


class TestFormat:
    def test_canonical_headers(self, run: Run) -> None:
        assert run.headers["encounters"] == list(ENCOUNTER_COLUMNS)
        assert run.headers["corrections"] == list(CORRECTION_COLUMNS)
        assert run.headers["decisions"] == list(DECISION_COLUMNS)
        raw = run.result.encounters_path.read_bytes()
        assert raw.startswith(b"association;encounter_ref;")
        raw.decode("utf-8")

    def test_counts_match_the_files(self, run: Run) -> None:
        r = run.result
        assert len(run.encounters) == r.rows == r.encounters + sum(r.bad_rows.values())
        assert r.encounters == 60_000
        assert len(run.decisions) == r.decisions
        statuses = Counter(row["status"] for row in run.corrections)
        assert statuses == {"active": r.corrections, "void": r.voids}
        assert r.rows == planned_rows(associations=4, start=date(2023, 1, 1),
                                      end=date(2023, 12, 31), encounters=60_000, seed=7,
                                      bad_rows=10)

    def test_good_rows_parse_with_french_times_and_decimals(self, run: Run) -> None:
        rows = run.good
        assert len(rows) == run.result.encounters
        for row in rows:
            performed = datetime.strptime(row["performed_at"], TIME)
            if row["regulation_origin"] == "NONE":
                assert row["regulated_at"] == ""
            else:
                assert datetime.strptime(row["regulated_at"], TIME) <= performed
            assert AMOUNT.match(row["billed_amount"])
            assert re.fullmatch(r"1\d{10}", row["doctor_rpps"])
            assert row["patient_ref"].startswith(f"P-{row['association'][4:]}-")
            assert re.fullmatch(r"SOS-\w{2}", row["association"])

    def test_amount_is_the_sum_of_the_tariffs(self, run: Run) -> None:
        for row in run.good[::7]:
            day = datetime.strptime(row["performed_at"], TIME).date()
            expected = amount(row["billed_codes"].split("+"), base_period(day))
            assert Decimal(row["billed_amount"].replace(",", ".")) == expected

    def test_refs_are_unique_per_association(self, run: Run) -> None:
        keys = Counter((r["association"], r["encounter_ref"]) for r in run.encounters)
        assert max(keys.values()) == 1

    def test_no_time_falls_in_a_dst_change_hour(self, run: Run) -> None:
        # 26 March and 29 October 2023: 02:xx is skipped or repeated in Paris.
        for row in run.encounters:
            for column in ("performed_at", "regulated_at"):
                text = row[column]
                if text[:10] in ("26/03/2023", "29/10/2023"):
                    assert not text.endswith(tuple(f" 02:{m:02d}" for m in range(60)))


class TestBadRows:
    def test_count_and_kinds(self, run: Run) -> None:
        assert sum(run.result.bad_rows.values()) == 10
        assert set(run.result.bad_rows) == set(KINDS)

    def test_each_bad_row_is_refused_for_its_defect(self, run: Run) -> None:
        found: Counter[str | None] = Counter()
        positions = []
        for i, issues in enumerate(run.problems):
            if issues:
                assert len(issues) == 1
                found[issues[0][0]] += 1
                positions.append(i)
        assert found == Counter({BAD_COLUMN[k]: n for k, n in run.result.bad_rows.items()})
        # spread through the file, not bunched at one end
        assert positions[0] < len(run.encounters) / 5 < positions[-1] - len(run.encounters) / 2

    def test_bad_rows_have_no_decision_or_correction(self, run: Run) -> None:
        bad = {r["encounter_ref"] + r["association"]
               for r, issues in zip(run.encounters, run.problems, strict=True) if issues}
        assert not bad & {r["encounter_ref"] + r["association"] for r in run.decisions}
        assert not bad & {r["encounter_ref"] + r["association"] for r in run.corrections}

    def test_without_encounters_bad_rows_are_still_written(self, tmp_path: Path) -> None:
        result = generate(tmp_path, associations=1, start=date(2023, 1, 1),
                          end=date(2023, 1, 1), encounters=0, bad_rows=5)
        assert result.rows == 5 and set(result.bad_rows) == set(KINDS)
        assert len(result.encounters_path.read_text().splitlines()) == 6


class TestDecisionsAndCorrections:
    def test_decisions_parse_and_reference_known_encounters(self, run: Run) -> None:
        encounters = {(r["association"], r["encounter_ref"]): r for r in run.good}
        problems = checker(DECISION_SCHEMA, run.headers["decisions"])
        assert 0.95 < len(run.decisions) / len(encounters) < 0.99
        for d in run.decisions:
            assert not problems(d)
            e = encounters[(d["association"], d["encounter_ref"])]
            acted = datetime.strptime(e["performed_at"], TIME).date()
            decided = datetime.strptime(d["decided_at"], "%d/%m/%Y").date()
            assert timedelta(days=5) <= decided - acted <= timedelta(days=30)
            paid = Decimal(d["paid_amount"].replace(",", "."))
            assert paid <= Decimal(e["billed_amount"].replace(",", "."))
            if d["rejected_codes"]:
                assert d["reason"].startswith("RSP-")
            else:
                assert d["paid_amount"] == e["billed_amount"]

    def test_rejections_include_snp_for_sos_regulation(self, run: Run) -> None:
        encounters = {(r["association"], r["encounter_ref"]): r for r in run.good}
        rejected = [d for d in run.decisions if d["rejected_codes"]]
        assert len(rejected) == run.result.rejections
        assert 0.005 < len(rejected) / len(run.decisions) < 0.03
        for d in rejected:
            if d["rejected_codes"] == "SNP" and d["reason"].startswith("RSP-471"):
                assert encounters[(d["association"], d["encounter_ref"])][
                    "regulation_origin"] == "SOS"

    def test_corrections_are_later_versions_of_known_encounters(self, run: Run) -> None:
        encounters = {(r["association"], r["encounter_ref"]): r for r in run.good}
        problems = checker(ENCOUNTER_SCHEMA, run.headers["corrections"])
        for c in run.corrections:
            assert not problems(c)
            original = encounters[(c["association"], c["encounter_ref"])]
            facts = {k: v for k, v in c.items() if k != "status"}
            if c["status"] == "void":
                assert facts == original
            else:
                assert c["status"] == "active" and facts != original


class TestReproducibility:
    def test_same_arguments_give_byte_identical_files(self, tmp_path: Path) -> None:
        args = dict(associations=3, start=date(2023, 3, 1), end=date(2023, 11, 30),
                    encounters=15_000, seed=11, bad_rows=6)
        first = generate(tmp_path / "a", **args)  # type: ignore[arg-type]
        second = generate(tmp_path / "b", **args)  # type: ignore[arg-type]
        other = generate(tmp_path / "c", **{**args, "seed": 12})  # type: ignore[arg-type]
        for name in ("encounters.csv", "encounters_corrections.csv", "decisions.csv"):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert first.as_json()["decisions"] == second.as_json()["decisions"] > 0
        assert (tmp_path / "a" / "encounters.csv").read_bytes() != other.encounters_path.read_bytes()

    def test_memory_does_not_grow_with_rows(self, tmp_path: Path) -> None:
        # 200k rows under tracemalloc would take ~25 s: trace a 30k-row run, and compare the
        # peak RSS of 20k- and 300k-row runs in fresh interpreters.
        seen: list[int] = []
        tracemalloc.start()
        try:
            result = generate(tmp_path / "t", associations=4, start=date(2023, 1, 1),
                              end=date(2023, 12, 31), encounters=30_000, on_progress=seen.append)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.rows == 30_000
        assert peak < 30 * 2**20, f"peak {peak / 2**20:.1f} MiB"
        assert seen == sorted(seen) and seen[-1] == 30_000 and len(seen) >= 3
        small, large = (_peak_rss_kib(tmp_path / str(n), n) for n in (20_000, 300_000))
        assert large - small < 8 * 1024, f"RSS grew by {(large - small) / 1024:.1f} MiB"

    @pytest.mark.parametrize("kwargs", [
        {"start": date(2023, 2, 1), "end": date(2023, 1, 1)},
        {"start": date(2016, 1, 1)},
        {"associations": 0},
        {"associations": 97},
        {"encounters": -1},
        {"bad_rows": -1},
        {"corrections": 0.9, "voids": 0.2},
    ])
    def test_bad_arguments_are_refused(self, tmp_path: Path, kwargs: dict) -> None:
        args = {"associations": 1, "start": date(2023, 1, 1), "end": date(2023, 1, 31),
                "encounters": 10, **kwargs}
        with pytest.raises(ValueError):
            generate(tmp_path, **args)


def _peak_rss_kib(out: Path, rows: int) -> int:
    """Peak RSS (KiB) of a fresh interpreter that generates ``rows`` encounters."""
    code = (
        "import resource, sys\n"
        "from datetime import date\n"
        "from pathlib import Path\n"
        "from ledger.synth import generate\n"
        f"generate(Path({str(out)!r}), associations=8, start=date(2023, 1, 1), "
        f"end=date(2023, 12, 31), encounters={rows})\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    return int(done.stdout.strip())
