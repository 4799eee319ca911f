"""The synthetic activity has a plausible shape: origins, delays, hours, days, codes, sizes."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from decimal import Decimal

import holidays

from ledger.synth import AssociationProfile, planned_rows
from ledger.synth.profile import MAX_ASSOCIATIONS, apportion, make_profiles
from ledger.synth.tariffs import amount, amount_text, base_period, billed_codes
from tests.unit.synth.conftest import Run

JULY = datetime(2023, 7, 1)


class TestMix:
    def test_origins(self, run: Run) -> None:
        origins = Counter(r["regulation_origin"] for r in run.good)
        n = sum(origins.values())
        assert origins["SOS"] / n > 0.5
        assert 0.06 < origins["C15"] / n < 0.14
        assert 0.1 < origins["NONE"] / n < 0.35

    def test_walk_ins_are_consultations_and_visits_are_40_to_65_percent(self, run: Run) -> None:
        acts: dict[str, Counter[str]] = defaultdict(Counter)
        for r in run.good:
            acts[r["association"]][r["act"]] += 1
            if r["regulation_origin"] == "NONE":
                assert r["act"] == "consultation"
        for counts in acts.values():
            assert 0.37 < counts["visit"] / counts.total() < 0.68

    def test_sas_stops_on_1_july_2023_unless_resumed(self, run: Run) -> None:
        resumed = {a.code for a in run.result.associations if a.sas_resumed}
        before = after = 0
        for r, performed, _ in run.timed:
            if r["regulation_origin"] == "SAS":
                if performed < JULY:
                    before += 1
                elif r["association"] not in resumed:
                    after += 1
        assert before > 100 and after == 0

    def test_resumed_association_has_sas_again(self) -> None:
        profile = make_profiles(1, 0)[0]
        resumed = AssociationProfile(**{**profile.__dict__, "sas_resumed": date(2024, 3, 1)})
        assert resumed.sas_share_on(date(2023, 6, 30)) == profile.sas_share
        assert resumed.sas_share_on(date(2024, 2, 29)) == 0
        assert resumed.sas_share_on(date(2024, 3, 1)) > 0

    def test_delays_mostly_under_4h_with_a_tail_past_48h(self, run: Run) -> None:
        delays = [(p - g).total_seconds() / 3600 for _, p, g in run.timed if g is not None]
        assert sum(d <= 4 for d in delays) / len(delays) > 0.8
        assert 0.01 < sum(d > 48 for d in delays) / len(delays) < 0.06
        assert max(delays) <= 73 and min(delays) >= 0

    def test_treating_doctor_about_5_percent(self, run: Run) -> None:
        rows = run.good
        assert 0.03 < sum(r["treating_doctor"] == "1" for r in rows) / len(rows) < 0.07


class TestCalendar:
    def test_evenings_and_weekends_are_busier(self, run: Run) -> None:
        hours = Counter(p.hour for _, p, _ in run.timed)
        assert hours[20] > 1.3 * hours[10] and hours[4] < hours[10]
        per_day = Counter(p.date() for _, p, _ in run.timed)
        weekday = [n for d, n in per_day.items() if d.weekday() < 5]
        sunday = [n for d, n in per_day.items() if d.weekday() == 6]
        assert sum(sunday) / len(sunday) > 1.4 * sum(weekday) / len(weekday)

    def test_public_holidays_are_busier_than_weekdays(self, run: Run) -> None:
        per_day = Counter(p.date() for _, p, _ in run.timed)
        public = holidays.France(years=2023)
        plain = [n for d, n in per_day.items() if d.weekday() < 5 and d not in public]
        off = [n for d, n in per_day.items() if d.weekday() < 5 and d in public]
        assert sum(off) / len(off) > 1.3 * sum(plain) / len(plain)

    def test_pdsa_flag_only_in_pdsa_hours_for_regulated_acts(self, run: Run) -> None:
        public = holidays.France(years=2023)
        flagged = in_hours = 0
        for r, p, _ in run.timed:
            hours = p.weekday() == 6 or p.date() in public or not 8 <= p.hour < 20
            if r["pdsa"] == "1":
                assert hours and r["regulation_origin"] != "NONE"
                flagged += 1
            if hours and r["regulation_origin"] != "NONE":
                in_hours += 1
        assert flagged / in_hours > 0.85


class TestBilling:
    def test_codes_follow_act_time_and_origin(self, run: Run) -> None:
        for r, p, regulated in run.timed:
            codes = r["billed_codes"].split("+")
            assert codes[0] == ("VG" if r["act"] == "visit" else "G")
            if r["pdsa"] == "1":
                assert codes[1][:2] == ("VR" if r["act"] == "visit" else "CR")
            if "SNP" in codes:
                assert r["pdsa"] == "0" and r["treating_doctor"] == "0" and 8 <= p.hour < 20
                assert regulated is not None and (p - regulated).total_seconds() <= 48 * 3600
        snp = Counter(r["regulation_origin"] for r, _, _ in run.timed
                      if r["billed_codes"].endswith("SNP"))
        assert snp["C15"] + snp["SAS"] > 10 * snp["SOS"] > 0

    def test_day_time_eligible_sas_acts_bill_snp(self) -> None:
        assert billed_codes(True, False, 600, False, False) == "VG+MD"
        assert billed_codes(True, True, 1300, False, False) == "VG+VRN"
        assert billed_codes(True, True, 120, False, False) == "VG+VRM"
        assert billed_codes(False, True, 600, True, False) == "G+CRD"
        assert billed_codes(False, False, 600, False, True) == "G+SNP"

    def test_tariffs_by_date(self) -> None:
        assert amount_text("VG+MD", base_period(date(2023, 10, 31))) == "35,00"
        assert amount_text("VG+VRN", base_period(date(2023, 6, 1))) == "71,00"
        assert amount_text("VG+VRM", base_period(date(2023, 6, 1))) == "84,50"
        assert amount(["G"], base_period(date(2023, 11, 1))) == Decimal("26.50")
        assert amount(["G", "SNP"], base_period(date(2024, 12, 22))) == Decimal("45.00")


class TestSizing:
    def test_national_profile(self) -> None:
        year = planned_rows(associations=64, start=date(2023, 1, 1), end=date(2023, 12, 31))
        assert 3_200_000 < year < 4_300_000
        doctors = [len(p.doctors) for p in make_profiles(64, 0)]
        assert min(doctors) >= 10 and max(doctors) <= 50
        assert 1_200 < sum(doctors) < 1_800

    def test_profiles_are_distinct_and_fake(self) -> None:
        profiles = make_profiles(MAX_ASSOCIATIONS, 3)
        assert len({p.code for p in profiles}) == MAX_ASSOCIATIONS
        assert profiles[0].code == "SOS-75" and profiles[1].code == "SOS-13"
        rpps = [d for p in profiles for d in p.doctors]
        assert len(set(rpps)) == len(rpps)
        assert all(len(d) == 11 and d[0] == "1" and d.isdigit() for d in rpps)

    def test_apportion_is_exact(self) -> None:
        assert apportion(10, [1.0, 1.0, 1.0]) == [4, 3, 3]
        assert sum(apportion(1_000_003, [0.3, 2.5, 1.1, 0.01])) == 1_000_003
