"""Intake's composition root: the one place that builds engines, connections and handlers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from supportflow.intake.v1 import intake_pb2_grpc

from services.intake.adapters import tables
from services.intake.adapters.catalog_file import load_catalog
from services.intake.adapters.pg_submissions import PgSubmissionUnitOfWorkFactory
from services.intake.adapters.unit_of_work import SqlUnitOfWorkFactory
from services.intake.application.handlers import IntakeDeps
from services.intake.application.ports import Clock, IdGenerator, SubmissionUnitOfWorkFactory
from services.intake.application.submitting import commit_submissions
from services.intake.domain.catalog import Catalog
from services.intake.entrypoints import projection
from services.intake.entrypoints.grpc_api import IntakeServicer
from services.intake.settings import IntakeSettings
from services.kit import db
from services.kit.batching import GroupCommitter
from services.kit.consumer import DurableConsumer
from services.kit.messaging import NatsConnection
from services.kit.metrics import Metrics
from services.kit.migrate import upgrade
from services.kit.outbox import OutboxRelay
from services.kit.pg_direct import DirectConnections
from services.kit.rpc.server import ServiceHost
from services.kit.runtime import SystemClock, UuidIds
from services.kit.wiring import nats_connection, service_host

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
SERVICE_NAME = "supportflow.intake.v1.IntakeService"


@dataclass
class Intake:
    settings: IntakeSettings
    engine: AsyncEngine
    nats: NatsConnection
    relay: OutboxRelay
    consumer: DurableConsumer
    host: ServiceHost
    deps: IntakeDeps
    metrics: Metrics

    async def start(self) -> int:
        if self.settings.migrate_on_start:
            await upgrade(self.engine, MIGRATIONS, "intake")
        self.nats.start()
        self.host.add_background("outbox-relay", self.relay.run(), stop=self.relay.stop)
        self.host.add_background("workflow-events", self.consumer.run(), stop=self.consumer.stop)
        self.metrics.serve(self.settings.grpc_host, self.settings.metrics_port)
        self.host.on_close(self.metrics.close)
        self.host.on_close(self.engine.dispose)
        self.host.on_close(self.nats.close)
        return await self.host.start(self.settings.grpc_host, self.settings.grpc_port)


def bootstrap(
    settings: IntakeSettings,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    catalog: Catalog | None = None,
) -> Intake:
    engine = db.create_engine(settings.database_url, pool_size=settings.database_pool_size)
    nats = nats_connection(settings, "intake")
    relay = OutboxRelay(
        engine, tables.outbox, nats, batch_size=settings.outbox_batch_size, poll_seconds=settings.outbox_poll_seconds
    )
    clock = clock or SystemClock()
    uow = SqlUnitOfWorkFactory(engine, clock, relay.wake)
    batch_uow: SubmissionUnitOfWorkFactory = uow
    direct: DirectConnections | None = None
    if db.is_postgres(engine):  # the hot path skips SQLAlchemy's execution layer (kit/pg_direct.py)
        direct = DirectConnections(settings.database_url)
        batch_uow = PgSubmissionUnitOfWorkFactory(direct, clock, relay.wake)
    metrics = Metrics("intake")
    batch_sizes = metrics.histogram(
        "submit_batch_size", "Tickets stored per transaction (group commit)", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
    )
    deps = IntakeDeps(
        uow=uow,
        submissions=GroupCommitter(
            partial(commit_submissions, batch_uow, uow),
            retryable=db.lost_database,
            on_batch=batch_sizes.observe,
            linger=settings.submit_linger_seconds,
        ),
        catalog=catalog or load_catalog(settings.catalog_file),
        clock=clock,
        ids=ids or UuidIds(),
    )
    consumer = DurableConsumer(
        nats,
        engine,
        durable="intake-read-model",
        filter_subjects=projection.SUBJECTS,
        handler=projection.apply_event,
        processed=tables.processed_events,
        dead_letters=tables.dead_letters,
    )
    host = service_host(settings, "intake", SERVICE_NAME, engine)
    intake_pb2_grpc.add_IntakeServiceServicer_to_server(IntakeServicer(deps), host.server)
    if direct is not None:
        host.on_close(direct.close)
    return Intake(settings, engine, nats, relay, consumer, host, deps, metrics)
