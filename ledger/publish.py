"""Publishing rule sets into the ledger: every result can cite the exact rules it used.

A rule set is published as ``RuleSet.Published`` (full canonical content and its SHA-256) the first
time it is used, and ``RuleSet.Republished`` when its content has changed since. The ledger takes
the content as given: the read side (``projections.rules``) computes the canonical text and its
hash, and its callers (the CLI, an audit extract) pass them here as plain values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from eventsourcing.utils import get_topic

from ledger import domain
from ledger.application import EVENTS_TABLE
from ledger.errors import ConfigurationError
from ledger.persistence import event_state
from ledger.seal import Sealer
from ledger.store import EventWriter, NewEvent
from ledger.vocabulary import PARIS


class RuleSetContent(NamedTuple):
    """A rule set as the ledger publishes it.

    Attributes:
        name: the rule set's name (its aggregate id is ``domain.rule_set_id(name)``).
        content: its canonical JSON text.
        content_hash: the SHA-256 (hex) of ``content`` encoded as UTF-8.
    """

    name: str
    content: str
    content_hash: str


def published_hash(conn: Any, name: str) -> tuple[int, str | None]:
    """The latest published version and content hash of a rule set (0, None if never)."""
    row = conn.execute(
        f"SELECT originator_version, state FROM {EVENTS_TABLE} WHERE originator_id = %s "
        "ORDER BY originator_version DESC LIMIT 1", (domain.rule_set_id(name),)
    ).fetchone()
    if row is None:
        return 0, None
    return int(row[0]), json.loads(bytes(row[1]))["content_sha256"]


def publish_rule_sets(conn: Any, rule_sets: Iterable[RuleSetContent],
                      sealer: Sealer | None) -> list[str]:
    """Publish the rule sets not yet published with their current content; returns their names.

    Args:
        conn: an open autocommit psycopg connection to the ledger database.
        rule_sets: the rule sets' names, canonical contents and content hashes; a name given
            twice is published once, with its first content.
        sealer: seals the log after each write (``ledger.seal``); without it, a rule set that
            needs publishing raises ``ConfigurationError``.

    Returns:
        The names of the rule sets published (or republished) now, in the order given.
    """
    done: list[str] = []
    seen: set[str] = set()
    for rs in rule_sets:
        if rs.name in seen:
            continue
        seen.add(rs.name)
        version, sha = published_hash(conn, rs.name)
        if sha == rs.content_hash:
            continue
        now = datetime.now(tz=PARIS)
        oid = domain.rule_set_id(rs.name)
        if version == 0:
            event: Any = domain.RuleSet.Published(
                originator_id=oid, originator_version=1, timestamp=now,
                originator_topic=get_topic(domain.RuleSet), effective_at=now, name=rs.name,
                content_sha256=rs.content_hash, content=rs.content)
        else:
            event = domain.RuleSet.Republished(
                originator_id=oid, originator_version=version + 1, timestamp=now,
                effective_at=now, content_sha256=rs.content_hash, content=rs.content)
        if sealer is None:
            raise ConfigurationError(
                f"rule set {rs.name!r} is not published in the ledger with this content yet, "
                "and publishing it needs the ledger's key (it seals what it writes): set "
                "CLAIMS_PSEUDONYM_KEY")
        with conn.transaction():
            writer = EventWriter(conn, sealer)
            writer.lock()
            # Re-check under the lock: another process may have published it meanwhile.
            if published_hash(conn, rs.name)[1] == rs.content_hash:
                continue
            writer.append([NewEvent(oid, event.originator_version, get_topic(type(event)),
                                    event_state(event))])
            writer.finish()
        done.append(rs.name)
    return done
