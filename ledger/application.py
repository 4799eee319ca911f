"""The event-store application on ``eventsourcing.postgres``, with the project's pydantic mapper.

Bulk ingestion writes the same stored-event rows directly (see ``ledger.store``); everything the
library offers (``repository.get``, the notification log) reads them as if ``save`` had written them.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper
from eventsourcing.utils import Environment, EnvType

from ledger.persistence import PydanticMapper

APP_NAME = "ClaimsLedger"
EVENTS_TABLE = "claimsledger_events"


class ClaimsLedger(Application[UUID]):
    """Commands and queries of the write side; one instance per process.

    Configured by the ``env`` it is given and nothing else: unlike the library's default, the
    process environment (``os.environ``) is never read, so a ``POSTGRES_*`` or
    ``CLAIMSLEDGER_POSTGRES_*`` variable left in a shell cannot send it to another database or
    schema than the caller's.
    """

    name = APP_NAME

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=dict(env or {}))

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """The library's settings: the class's ``env``, then the given ``env`` (no ``os.environ``).

        As ``Application.construct_env`` of ``eventsourcing`` 9.5.6, without its
        ``_env.update(os.environ)``.
        """
        settings = dict(type(self).env)
        if type(self).is_snapshotting_enabled or type(self).snapshotting_intervals:
            settings["IS_SNAPSHOTTING_ENABLED"] = "y"
        if env is not None:
            settings.update(env)
        return Environment(name, settings)

    def construct_mapper(self) -> Mapper[UUID]:
        return PydanticMapper(transcoder=self.construct_transcoder())
