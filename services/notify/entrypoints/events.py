"""The durable consumer's handler: every event on the stream, recorded in the consumer's transaction.

notify listens to every subject (`supportflow.>`): which events cause notices is configuration
(rules.toml), not code. The consumer's processed-events table makes a redelivered event a no-op;
the notices' unique keys would absorb it too.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection
from supportflow.events.v1 import events_pb2

from services.kit.events import SUBJECT_ROOT
from services.notify.adapters.event_codec import decode
from services.notify.adapters.sql_store import SqlRecordStore
from services.notify.application.ports import Clock, Composer, ConfigSource, IdGenerator
from services.notify.application.recording import Recorded, record_event

SUBJECTS = [f"{SUBJECT_ROOT}.>"]


class EventRecorder:
    """`handle` runs inside the consumer's transaction; `after_commit` runs once it committed
    (and the message was acknowledged), to count what was stored and wake the senders."""

    def __init__(
        self,
        config: ConfigSource,
        clock: Clock,
        ids: IdGenerator,
        composer: Composer,
        *,
        on_committed: Callable[[Recorded], None],
    ) -> None:
        self._config, self._clock, self._ids, self._composer = config, clock, ids, composer
        self._on_committed = on_committed
        self._pending: Recorded | None = None

    async def handle(self, conn: AsyncConnection, event: events_pb2.Event) -> None:
        self._pending = None  # from an earlier event whose transaction failed: never committed
        self._pending = await record_event(
            SqlRecordStore(conn),
            self._config.current,
            decode(event),
            now=self._clock.now(),
            ids=self._ids,
            composer=self._composer,
        )

    def after_commit(self) -> None:
        recorded, self._pending = self._pending, None
        if recorded is not None:
            self._on_committed(recorded)
