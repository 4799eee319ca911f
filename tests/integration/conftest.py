from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledger.pseudonym import Pseudonymiser
from ledger.seal import Sealer
from ledger.store import init_schema
from ops.database import Connection

KEY = b"test-key-0123456789abcdef"
#: Seals what the tests write outside an ingest (an ingest seals with its pseudonymiser's key).
SEALER = Sealer(KEY)


@pytest.fixture
def ledger_db(db: Connection) -> Connection:
    init_schema(db, db.library_env())
    return db


@pytest.fixture
def conn(ledger_db: Connection) -> Iterator[Any]:
    with ledger_db.connect() as c:
        yield c


@pytest.fixture
def pseudo() -> Pseudonymiser:
    return Pseudonymiser(KEY)
