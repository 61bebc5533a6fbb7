"""Intake under faults: NATS down while tickets keep coming, and a SIGKILL between the commit and
the publish. Real intake OS processes, real PostgreSQL, a NATS JetStream server of the test's own."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2
from nats.js.errors import NotFoundError
from sqlalchemy import func, insert, select, table
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from supportflow.events.v1 import events_pb2
from supportflow.intake.v1 import intake_pb2_grpc

from services.intake.adapters import tables
from tests.intake.conftest import auth, intake_env, submission, token
from tests.support.fixtures import ServiceFactory
from tests.support.nats import NatsServer
from tests.support.postgres import ThrowawayCluster
from tests.support.processes import ServiceProcess, free_port, grpc_health_status

T = TypeVar("T")

pytestmark = pytest.mark.fault

STREAM = "SUPPORTFLOW"
SUBMITTED = "supportflow.acme.ticket.submitted"


class StreamReader:
    """Reads the SUPPORTFLOW stream from the start, message by message (js.get_msg)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._next = 1
        self.submitted: Counter[str] = Counter()
        self.raw: dict[str, tuple[str, bytes]] = {}  # ticket number -> (event id, payload)

    async def _read_new(self) -> None:
        nc = await nats.connect(self._url, connect_timeout=2, allow_reconnect=False)
        try:
            js = nc.jetstream(timeout=5)
            try:
                last = (await js.stream_info(STREAM)).state.last_seq
            except NotFoundError:
                return
            while self._next <= last:
                try:
                    msg = await js.get_msg(STREAM, seq=self._next)
                except NotFoundError:
                    msg = None
                self._next += 1
                if msg is None or msg.subject != SUBMITTED or msg.data is None:
                    continue
                event = events_pb2.Event.FromString(msg.data)
                assert event.type == "ticket.submitted"
                self.submitted[event.ticket_number] += 1
                self.raw[event.ticket_number] = (event.event_id, msg.data)
        finally:
            await nc.close()

    async def wait_for(self, numbers: Iterable[str], within: float = 30.0) -> Counter[str]:
        """Read until every number has a ticket.submitted event or `within` seconds pass."""
        wanted = set(numbers)
        deadline = time.monotonic() + within
        while True:
            await self._read_new()
            if wanted <= self.submitted.keys() or time.monotonic() > deadline:
                return self.submitted
            await asyncio.sleep(0.2)


async def submit(address: str, count: int) -> list[str]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        replies = await asyncio.gather(
            *(
                stub.SubmitTicket(submission(title=f"fault ticket {i}"), metadata=auth(token()), timeout=15)
                for i in range(count)
            )
        )
    assert not any(r.replayed for r in replies)
    return [r.ticket.ticket_number for r in replies]


async def outbox_size(database_url: str) -> int:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table("intake_outbox"))) or 0)
    finally:
        await engine.dispose()


async def wait_outbox_empty(database_url: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        left = await outbox_size(database_url)
        if not left or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert left == 0, f"{left} events still in the outbox after {within:.0f}s"


async def assert_healthy_and_accepting(service: ServiceProcess) -> None:
    status = await asyncio.to_thread(grpc_health_status, service.address, "", 2.0)
    assert status == health_pb2.HealthCheckResponse.SERVING
    (number,) = await submit(service.address, 1)
    assert number.startswith("TS")


def assert_exactly_once(seen: Counter[str], numbers: Iterable[str]) -> None:
    numbers = list(numbers)
    missing = [n for n in numbers if seen[n] == 0]
    repeated = {n: seen[n] for n in numbers if seen[n] > 1}
    assert not missing, f"{len(missing)} of {len(numbers)} tickets never published: {missing[:5]}"
    assert not repeated, f"published more than once: {repeated}"


async def test_tickets_accepted_while_nats_is_down_are_published_once_it_is_back(
    fresh_database_url: str, own_nats_server: NatsServer, service_process_factory: ServiceFactory
) -> None:
    env = intake_env(fresh_database_url, own_nats_server.url, SUPPORTFLOW_GRPC_PORT="{grpc_port}")
    intake = service_process_factory("intake", "services.intake", env)

    before = await submit(intake.address, 20)
    own_nats_server.stop()
    during = await submit(intake.address, 30)  # intake keeps accepting: events wait in the outbox
    own_nats_server.restart()

    numbers = before + during
    assert len(set(numbers)) == 50
    seen = await StreamReader(own_nats_server.url).wait_for(numbers, within=30)
    assert_exactly_once(seen, numbers)
    await assert_healthy_and_accepting(intake)


async def test_sigkill_between_commit_and_publish_loses_nothing_and_duplicates_nothing(
    fresh_database_url: str, own_nats_server: NatsServer, service_process_factory: ServiceFactory
) -> None:
    # Nothing listens on this port, so the relay never publishes: every event stays committed in
    # the outbox, and the process dies with all of them unpublished.
    dead_nats = f"nats://127.0.0.1:{free_port()}"
    doomed = service_process_factory(
        "intake-doomed",
        "services.intake",
        intake_env(fresh_database_url, dead_nats, SUPPORTFLOW_GRPC_PORT="{grpc_port}"),
    )
    numbers = await submit(doomed.address, 10)
    assert await outbox_size(fresh_database_url) == 10
    doomed.kill()
    assert doomed.returncode is not None
    assert doomed.returncode < 0

    env = intake_env(fresh_database_url, own_nats_server.url, SUPPORTFLOW_GRPC_PORT="{grpc_port}")
    intake = service_process_factory("intake", "services.intake", env)
    reader = StreamReader(own_nats_server.url)
    assert_exactly_once(await reader.wait_for(numbers, within=30), numbers)
    await wait_outbox_empty(fresh_database_url)
    await assert_healthy_and_accepting(intake)

    # Restarting (twice) after everything was published republishes nothing.
    for _ in range(2):
        intake.restart()
        await assert_healthy_and_accepting(intake)
    await wait_outbox_empty(fresh_database_url)
    await asyncio.sleep(1.0)  # several relay polls (0.2 s)
    seen = await reader.wait_for(numbers, within=0)
    assert_exactly_once(seen, numbers)

    # "Published but not yet deleted": put an already-published event back into the outbox, as a
    # crash between the JetStream ack and the DELETE leaves it; the relay sends it again and
    # JetStream's duplicate window (Nats-Msg-Id = event id) drops the copy.
    event_id, payload = reader.raw[numbers[0]]
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(tables.outbox).values(
                    event_id=event_id, subject=SUBMITTED, payload=payload, created_at=func.now()
                )
            )
    finally:
        await engine.dispose()
    await wait_outbox_empty(fresh_database_url)
    seen = await reader.wait_for(numbers, within=0)
    assert_exactly_once(seen, numbers)
    await assert_healthy_and_accepting(intake)


async def test_sigterm_stops_promptly_and_publishes_what_was_accepted(
    fresh_database_url: str, own_nats_server: NatsServer, service_process_factory: ServiceFactory
) -> None:
    nats_url = own_nats_server.url  # its own stream: ticket numbers restart with each fresh database
    # A long grace: a shutdown that sat out the grace instead of stopping its workers would be
    # SIGKILLed by terminate() below and report -9.
    env = intake_env(
        fresh_database_url, nats_url, SUPPORTFLOW_GRPC_PORT="{grpc_port}", SUPPORTFLOW_SHUTDOWN_GRACE_SECONDS="60"
    )
    intake = service_process_factory("intake", "services.intake", env)
    numbers = await submit(intake.address, 20)
    code = await asyncio.to_thread(intake.terminate, 8.0)
    assert code == 0, f"intake did not shut down cleanly on SIGTERM (exit {code}):\n{intake.log_tail()}"
    assert "did not stop in time" not in intake.log_tail(200)
    assert await outbox_size(fresh_database_url) == 0, "accepted tickets' events left unpublished at shutdown"
    assert_exactly_once(await StreamReader(nats_url).wait_for(numbers, within=10), numbers)


@pytest.mark.fault
async def test_a_database_outage_answers_unavailable_and_submissions_resume_when_it_is_back(
    own_postgres_cluster: ThrowawayCluster, own_nats_server: NatsServer, service_process_factory: ServiceFactory
) -> None:
    intake = service_process_factory(
        "intake",
        "services.intake",
        intake_env(
            own_postgres_cluster.server.create_database("intake"),
            own_nats_server.url,
            SUPPORTFLOW_GRPC_PORT="{grpc_port}",
        ),
    )
    md = auth(token(roles=("integration",)))
    async with grpc.aio.insecure_channel(intake.address) as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        before = await stub.SubmitTicket(submission(title="before the outage"), metadata=md, timeout=10)

        own_postgres_cluster.stop()
        during = submission(title="during the outage")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SubmitTicket(during, metadata=md, timeout=20)
        # Retryable, and said so: not an internal error, and the process stays up, unready.
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
        assert "database" in (refused.value.details() or "")
        assert intake.running
        assert grpc_health_status(intake.address, "liveness") == health_pb2.HealthCheckResponse.SERVING

        own_postgres_cluster.start()
        # The client retries with the same request id, as UNAVAILABLE invites: one ticket, the next number.
        after = await _retrying_unavailable(lambda: stub.SubmitTicket(during, metadata=md, timeout=10))
        assert int(after.ticket.ticket_number[-6:]) == int(before.ticket.ticket_number[-6:]) + 1
        again = await stub.SubmitTicket(during, metadata=md, timeout=10)
        assert again.replayed
        assert again.ticket.ticket_number == after.ticket.ticket_number


async def _retrying_unavailable(call: Callable[[], Awaitable[T]], attempts: int = 50) -> T:
    codes = []
    for _ in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
            await asyncio.sleep(0.2)
    raise AssertionError(f"still failing after the database came back: {set(codes)}")
