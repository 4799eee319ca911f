"""Settings: one explicit mapping built by the CLI (or a test) and passed down.

Nothing below the CLI reads ``os.environ``; secrets have no production default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The clearly marked key used by ``claims demo`` only. Never use it for real data.
DEMO_PSEUDONYM_KEY = "DEMO-ONLY-KEY-not-for-real-patient-data"


@dataclass(frozen=True)
class Settings:
    """What every layer needs to know about its environment."""

    database_url: str
    home: Path
    pseudonym_key: bytes | None
    actor: str = "unknown"

    def require_pseudonym_key(self) -> bytes:
        """The pseudonymisation key; ``ConfigurationError`` if it is missing or too short."""
        from ledger.errors import ConfigurationError
        from ledger.pseudonym import MIN_KEY_BYTES

        if not self.pseudonym_key:
            raise ConfigurationError(
                "CLAIMS_PSEUDONYM_KEY is not set: it is required to pseudonymise patient "
                "identifiers (only `claims demo` uses a built-in demo key)"
            )
        if len(self.pseudonym_key) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"CLAIMS_PSEUDONYM_KEY is too short: it must be at least {MIN_KEY_BYTES} bytes "
                f"(it has {len(self.pseudonym_key)}); use a long random secret"
            )
        return self.pseudonym_key
