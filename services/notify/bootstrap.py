"""The notify service's composition root: `bootstrap(settings, **overrides)` builds everything;
nothing happens at import. Tests call it with their own clock, environment and random source."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from supportflow.notify.v1 import notify_pb2_grpc

from services.kit import db
from services.kit.consumer import DurableConsumer
from services.kit.messaging import NatsConnection
from services.kit.metrics import Metrics
from services.kit.migrate import upgrade
from services.kit.rpc.server import ServiceHost
from services.kit.runtime import SystemClock, UuidIds
from services.kit.wiring import nats_connection, service_host
from services.notify.adapters import tables
from services.notify.adapters.composer import WireComposer
from services.notify.adapters.config_files import ConfigHolder
from services.notify.adapters.senders import SmtpSender, WebhookSender
from services.notify.adapters.sql_store import SqlDeliveryStore
from services.notify.application.delivering import DeliveryDeps
from services.notify.application.ports import Clock, IdGenerator, Outgoing
from services.notify.application.recording import Recorded
from services.notify.domain.delivery import SENT_BY_SENDERS, Outcome, Status
from services.notify.domain.retry import Random, RetryPolicy
from services.notify.domain.rules import CHANNELS, Channel
from services.notify.entrypoints import events
from services.notify.entrypoints.grpc_api import InboxDeps, NotifyServicer
from services.notify.entrypoints.sender_loop import ChannelSender
from services.notify.settings import NotifySettings

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
SERVICE_NAME = "supportflow.notify.v1.NotifyService"
#: The durable consumer of every event; replicas share it (each event goes to one of them).
DURABLE = "notify-events"


@dataclass
class Notify:
    settings: NotifySettings
    engine: AsyncEngine
    nats: NatsConnection
    config: ConfigHolder
    consumer: DurableConsumer
    senders: dict[Channel, ChannelSender]
    store: SqlDeliveryStore
    host: ServiceHost
    metrics: Metrics
    smtp: SmtpSender
    webhooks: WebhookSender

    async def start(self) -> int:
        if self.settings.migrate_on_start:
            await upgrade(self.engine, MIGRATIONS, "notify")
        self.nats.start()
        self.host.add_background("notify-events", self.consumer.run(), stop=self.consumer.stop)
        for channel, loop in self.senders.items():
            self.host.add_background(f"send-{channel}", loop.run(), stop=loop.stop)
        self.host.add_background("notify-config", self.config.run(), stop=self.config.stop)
        self.metrics.serve(self.settings.grpc_host, self.settings.metrics_port)
        self.host.on_close(self.smtp.close)
        self.host.on_close(self.webhooks.close)
        self.host.on_close(self.metrics.close)
        self.host.on_close(self.engine.dispose)
        self.host.on_close(self.nats.close)
        return await self.host.start(self.settings.grpc_host, self.settings.grpc_port)


def bootstrap(
    settings: NotifySettings,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    rng: Random | None = None,
) -> Notify:
    """`env`: the environment the webhooks' `url_env` / `secret_env` are read from (main() passes
    the process's). Raises RulesError when the configuration folder does not load."""
    clock = clock or SystemClock()
    config = ConfigHolder(
        settings.config_dir,
        env or {},
        strict_env=settings.environment == "prod",
        poll_seconds=settings.config_poll_seconds,
    )
    config.load_initial()  # refuse to start on a configuration that does not load
    engine = db.create_engine(settings.database_url, pool_size=settings.database_pool_size)
    nats = nats_connection(settings, "notify")
    metrics = Metrics("notify")
    sent = metrics.counter("notifications_sent_total", "Notifications delivered (in-app: stored)", ("channel",))
    dead = metrics.counter("notifications_dead_total", "Notifications given up on (see last_error)", ("channel",))
    failed = metrics.counter("send_failures_total", "Failed send attempts (each retried or dead)", ("channel",))
    for channel in CHANNELS:  # export zeros from the start, so that rates work from the first scrape
        sent.labels(channel)
        dead.labels(channel)
        failed.labels(channel)

    store = SqlDeliveryStore(engine)
    batch, workers = settings.sender_batch, settings.sender_workers
    deps = DeliveryDeps(
        store=store,
        clock=clock,
        rng=rng or random.Random(),
        policy=RetryPolicy(max_attempts=settings.max_attempts),
        # Long enough for a whole batch to go out at `workers` at a time, each send taking its
        # timeout a few times over (SMTP's applies to each step); a crash leaves them for this long.
        lease=timedelta(seconds=settings.send_timeout_seconds * 3 * math.ceil(batch / workers) + 30),
        batch=batch,
        max_per_minute=config.max_per_minute,
    )
    smtp = SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        starttls=settings.smtp_starttls,
        timeout_seconds=settings.send_timeout_seconds,
        workers=workers,
    )
    webhooks = WebhookSender(config.endpoint, clock, timeout_seconds=settings.send_timeout_seconds, workers=workers)

    def outcomes(channel: Channel, done: Sequence[tuple[Outgoing, Outcome]]) -> None:
        for _, outcome in done:
            if outcome.status == Status.SENT:
                sent.labels(channel).inc()
            else:
                failed.labels(channel).inc()
                if outcome.status == Status.DEAD:
                    dead.labels(channel).inc()

    senders: dict[Channel, ChannelSender] = {
        "email": ChannelSender("email", smtp, deps, poll_seconds=settings.sender_poll_seconds, on_outcomes=outcomes),
        "webhook": ChannelSender(
            "webhook", webhooks, deps, poll_seconds=settings.sender_poll_seconds, on_outcomes=outcomes
        ),
    }
    assert set(senders) == set(SENT_BY_SENDERS)

    def wake(channel: Channel) -> None:
        if channel in senders:
            senders[channel].wake()

    def committed(recorded: Recorded) -> None:
        for (channel, status), count in recorded.added.items():
            if status == Status.SENT:
                sent.labels(channel).inc(count)
            elif status == Status.DEAD:
                dead.labels(channel).inc(count)
            elif status == Status.PENDING:
                wake(channel)

    recorder = events.EventRecorder(
        config, clock, ids or UuidIds(), WireComposer(settings.mail_domain), on_committed=committed
    )
    consumer = DurableConsumer(
        nats,
        engine,
        durable=DURABLE,
        filter_subjects=events.SUBJECTS,
        handler=recorder.handle,
        processed=tables.processed_events,
        dead_letters=tables.dead_letters,
        after_commit=recorder.after_commit,
    )
    host = service_host(settings, "notify", SERVICE_NAME, engine)
    notify_pb2_grpc.add_NotifyServiceServicer_to_server(NotifyServicer(InboxDeps(store, clock, wake)), host.server)
    return Notify(settings, engine, nats, config, consumer, senders, store, host, metrics, smtp, webhooks)
