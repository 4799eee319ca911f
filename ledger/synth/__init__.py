"""Synthetic, deterministic billing exports of SOS Médecins associations (never real people).

``generate`` streams ``encounters.csv``, ``encounters_corrections.csv`` and ``decisions.csv`` in
the canonical format of ``docs/formats.md``; ``docs.md`` describes the activity model and its sources.
"""

from ledger.synth.generator import (
    CORRECTION_COLUMNS,
    DECISION_COLUMNS,
    ENCOUNTER_COLUMNS,
    SynthResult,
    generate,
    planned_rows,
)
from ledger.synth.profile import AssociationProfile

__all__ = ["CORRECTION_COLUMNS", "DECISION_COLUMNS", "ENCOUNTER_COLUMNS", "AssociationProfile",
           "SynthResult", "generate", "planned_rows"]
