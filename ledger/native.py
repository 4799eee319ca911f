"""The native loops over whole blocks (``ledger/_blocks.c``), or None where they could not be
built: ``hashing`` and ``store`` then run the same loops in Python."""

from __future__ import annotations

try:
    from ledger import _blocks as loops
except ImportError:  # not built (no compiler or no OpenSSL headers at install)
    loops = None  # type: ignore[assignment]
