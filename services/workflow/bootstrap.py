"""The workflow service's composition root: `bootstrap(settings, **overrides)` builds everything;
nothing happens at import. Tests call it with their own clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from supportflow.workflow.v1 import workflow_pb2_grpc

from services.kit import db
from services.kit.consumer import DurableConsumer
from services.kit.messaging import NatsConnection
from services.kit.metrics import Metrics
from services.kit.migrate import upgrade
from services.kit.outbox import OutboxRelay
from services.kit.rpc.server import ServiceHost
from services.kit.runtime import SystemClock, UuidIds
from services.kit.wiring import nats_connection, service_host
from services.workflow.adapters import tables
from services.workflow.adapters.engine import clock as engine_clock
from services.workflow.adapters.engine.bundle import read_bundle_dir
from services.workflow.adapters.runtimes import CachedRuntimes, SpiffBundleCompiler
from services.workflow.adapters.unit_of_work import SqlUnitOfWorkFactory
from services.workflow.application.handlers import WorkflowDeps
from services.workflow.application.ports import Clock, IdGenerator
from services.workflow.entrypoints import intake_events
from services.workflow.entrypoints.grpc_api import WorkflowServicer
from services.workflow.entrypoints.scheduler import Scheduler
from services.workflow.settings import WorkflowSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
SERVICE_NAME = "supportflow.workflow.v1.WorkflowService"


@dataclass
class Workflow:
    settings: WorkflowSettings
    engine: AsyncEngine
    nats: NatsConnection
    relay: OutboxRelay
    consumer: DurableConsumer
    scheduler: Scheduler
    host: ServiceHost
    deps: WorkflowDeps
    metrics: Metrics

    async def start(self) -> int:
        if self.settings.migrate_on_start:
            await upgrade(self.engine, MIGRATIONS, "workflow")
        self.nats.start()
        self.host.add_background("outbox-relay", self.relay.run(), stop=self.relay.stop)
        self.host.add_background("intake-events", self.consumer.run(), stop=self.consumer.stop)
        self.host.add_background("scheduler", self.scheduler.run(), stop=self.scheduler.stop)
        self.metrics.serve(self.settings.grpc_host, self.settings.metrics_port)
        self.host.on_close(self.metrics.close)
        self.host.on_close(self.engine.dispose)
        self.host.on_close(self.nats.close)
        return await self.host.start(self.settings.grpc_host, self.settings.grpc_port)


def bootstrap(settings: WorkflowSettings, *, clock: Clock | None = None, ids: IdGenerator | None = None) -> Workflow:
    clock = clock or SystemClock()
    previous_clock = engine_clock.use_clock(clock.now)  # the engine's timers see the service's time
    engine = db.create_engine(settings.database_url, pool_size=settings.database_pool_size)
    nats = nats_connection(settings, "workflow")
    relay = OutboxRelay(
        engine, tables.outbox, nats, batch_size=settings.outbox_batch_size, poll_seconds=settings.outbox_poll_seconds
    )
    scheduler_ref: list[Scheduler] = []

    def committed(events: bool, wake_times: list[datetime]) -> None:
        if events:
            relay.wake()
        if wake_times:
            for s in scheduler_ref:
                s.due_at(min(wake_times))

    bundle_dir = settings.default_bundle_dir
    deps = WorkflowDeps(
        uow=SqlUnitOfWorkFactory(engine, committed),
        runtimes=CachedRuntimes(step_time_limit=settings.step_time_limit_seconds),
        compiler=SpiffBundleCompiler(),
        default_bundle=lambda: read_bundle_dir(bundle_dir),
        clock=clock,
        ids=ids or UuidIds(),
    )
    metrics = Metrics("workflow")
    lateness = metrics.histogram("timer_lateness_seconds", "How long after its due time a timer or SLA check ran")
    started = metrics.counter("instances_started_total", "Process instances started (one per ticket)")
    scheduler = Scheduler(
        deps,
        poll_seconds=settings.scheduler_poll_seconds,
        batch=settings.scheduler_batch,
        observe_lateness=lateness.observe,
    )
    scheduler_ref.append(scheduler)
    consumer = DurableConsumer(
        nats,
        engine,
        durable="workflow-intake-events",
        filter_subjects=intake_events.SUBJECTS,
        batch_handler=intake_events.handler(deps, on_started=started.inc),
        processed=tables.processed_events,
        dead_letters=tables.dead_letters,
    )
    host = service_host(settings, "workflow", SERVICE_NAME, engine)
    workflow_pb2_grpc.add_WorkflowServiceServicer_to_server(WorkflowServicer(deps), host.server)

    async def restore_clock() -> None:
        engine_clock.use_clock(previous_clock)

    host.on_close(restore_clock)
    return Workflow(settings, engine, nats, relay, consumer, scheduler, host, deps, metrics)
