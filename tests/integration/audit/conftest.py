"""A small two-association ledger and a stand-in rule engine for the audit tests.

The stand-in keeps these tests independent of the tariff engine's data: a flat fee per act and the
SNP majoration for the origins a rule set accepts, each line citing a reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ledger.ingest.pipeline import ingest_file
from ledger.pseudonym import Pseudonymiser
from projections.facts import EncounterFacts
from tests.csvdata import decisions_csv, encounter, encounters_csv

A, B = "SOS-75", "SOS-92"
DOCTOR_A, DOCTOR_B = "10101010101", "20202020202"
B_REFS = ("B92-0001", "B92-0002")
B_PATIENTS = ("PB-777", "PB-778")


@dataclass(frozen=True)
class FakeRuleSet:
    name: str
    snp_origins: tuple[str, ...]

    def to_canonical_json(self) -> str:
        return json.dumps({"name": self.name, "G": "25.00", "VG": "35.00", "SNP": "15.00",
                           "snp_origins": list(self.snp_origins)}, sort_keys=True)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.to_canonical_json().encode()).hexdigest()


@dataclass(frozen=True)
class Line:
    code: str
    amount: Decimal
    reference: str


@dataclass(frozen=True)
class Explanation:
    amount: Decimal
    lines: tuple[Line, ...]


class FakeRules:
    SETS: ClassVar[dict[str, tuple[str, ...]]] = {
        "historical": ("SAS", "C15"), "parity": ("SAS", "C15", "SOS")}

    def load(self, name: str) -> FakeRuleSet:
        return FakeRuleSet(name, self.SETS[name])

    def explain_many(self, rule_set: Any, facts: Sequence[EncounterFacts]) -> dict[str, Any]:
        out = {}
        for f in facts:
            act = Line("G", Decimal("25.00"), "NGAP art. 2") if f.act == "consultation" else \
                Line("VG", Decimal("35.00"), "NGAP art. 14")
            lines = [act]
            if f.regulation_origin in rule_set.snp_origins:
                lines.append(Line("SNP", Decimal("15.00"), "Avenant 9, art. 4.2"))
            out[f.encounter_id] = Explanation(sum((li.amount for li in lines), Decimal(0)),
                                              tuple(lines))
        return out


@pytest.fixture
def rules() -> FakeRules:
    return FakeRules()


@pytest.fixture
def two_associations(conn: Any, pseudo: Pseudonymiser, tmp_path: Path) -> Any:
    """Encounters and decisions of A and B in the same files, then a correction of one of A's."""
    rows = [
        encounter("E-A1", regulation_origin="SOS", act="visit", billed_codes="VG",
                  billed_amount="35,00", patient_ref="PA-1"),
        encounter("E-A2", regulation_origin="SAS", billed_codes="G+SNP", billed_amount="40,00",
                  regulated_at="15/09/2023 10:40", performed_at="15/09/2023 14:00",
                  patient_ref="PA-2"),
        encounter("E-A3", regulation_origin="C15", regulated_at="20/09/2023 09:00",
                  performed_at="20/09/2023 09:30", patient_ref="PA-3"),
        encounter("E-A4", regulated_at="03/10/2023 09:00", performed_at="03/10/2023 09:30",
                  patient_ref="PA-4"),  # outside September
        encounter(B_REFS[0], association=B, doctor_rpps=DOCTOR_B, patient_ref=B_PATIENTS[0],
                  regulation_origin="SAS"),
        encounter(B_REFS[1], association=B, doctor_rpps=DOCTOR_B, patient_ref=B_PATIENTS[1],
                  act="visit", billed_codes="VG", billed_amount="35,00"),
    ]
    ingest_file(conn, encounters_csv(tmp_path / "mixed.csv", rows), pseudo)
    ingest_file(conn, encounters_csv(tmp_path / "fix.csv", [
        encounter("E-A1", regulation_origin="SOS", act="visit", billed_codes="VG+MD",
                  billed_amount="45,00", patient_ref="PA-1")]), pseudo)
    ingest_file(conn, decisions_csv(tmp_path / "paid.csv", [
        {"association": A, "encounter_ref": "E-A1", "decided_at": "30/09/2023",
         "paid_amount": "35,00", "paid_codes": "VG", "rejected_codes": "MD", "reason": "MD"},
        {"association": A, "encounter_ref": "E-A2", "decided_at": "30/09/2023",
         "paid_amount": "40,00", "paid_codes": "G+SNP"},
        {"association": B, "encounter_ref": B_REFS[0], "decided_at": "30/09/2023",
         "paid_amount": "40,00", "paid_codes": "G+SNP"},
    ]), pseudo)
    return conn
