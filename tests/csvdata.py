"""Small canonical CSV files for tests (synthetic: never real patients or doctors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ENCOUNTER_HEADER = ["association", "encounter_ref", "regulation_origin", "regulated_at",
                    "performed_at", "act", "patient_ref", "doctor_rpps", "treating_doctor",
                    "pdsa", "billed_codes", "billed_amount"]
DECISION_HEADER = ["association", "encounter_ref", "decided_at", "paid_amount", "paid_codes",
                   "rejected_codes", "reason"]

DEFAULTS: dict[str, Any] = {
    "association": "SOS-75", "regulation_origin": "SOS", "regulated_at": "14/09/2023 10:05",
    "performed_at": "14/09/2023 11:10", "act": "consultation", "patient_ref": "P-1",
    "doctor_rpps": "10101010101", "treating_doctor": "0", "pdsa": "0", "billed_codes": "G",
    "billed_amount": "25,00",
}


def encounter(ref: str, **overrides: Any) -> dict[str, Any]:
    return {**DEFAULTS, "encounter_ref": ref, **overrides}


def write_csv(path: Path, header: list[str], rows: list[dict[str, Any]], *, sep: str = ";",
              encoding: str = "utf-8") -> Path:
    lines = [sep.join(header)]
    lines += [sep.join(str(r.get(h, "")) for h in header) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def encounters_csv(path: Path, rows: list[dict[str, Any]], **kw: Any) -> Path:
    extra = [k for r in rows for k in r if k not in ENCOUNTER_HEADER]
    header = ENCOUNTER_HEADER + sorted(set(extra))
    return write_csv(path, header, rows, **kw)


def decisions_csv(path: Path, rows: list[dict[str, Any]], **kw: Any) -> Path:
    return write_csv(path, DECISION_HEADER, rows, **kw)
