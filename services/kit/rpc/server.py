"""The `grpc.aio` server every service runs: interceptors, standard health, reflection, and
graceful shutdown (SIGTERM → health NOT_SERVING → `server.stop(grace)` → background workers
asked to stop and awaited, cancelled only if they overrun → resources closed in reverse order).

Health answers two questions under two names of the standard service. `""` (and each service's
own name) is readiness: SERVING while the dependencies answer (the database), so an orchestrator
stops routing calls to a replica that cannot serve them. `"liveness"` is SERVING while the process
can make progress — its event loop answers and none of its background workers (outbox relay,
consumers, scheduler) has died — so a database outage marks every replica unready but restarts
none, while a replica whose worker crashed is restarted."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import grpc
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.kit.auth import TokenVerifier
from services.kit.rpc.interceptors import AuthInterceptor, ErrorInterceptor

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[None]]

#: The health service name that reports liveness (see the module docstring).
LIVENESS = "liveness"


class ServiceHost:
    def __init__(
        self,
        *,
        name: str,
        service_names: Sequence[str],
        verifier: TokenVerifier,
        max_message_bytes: int,
        shutdown_grace_seconds: float,
        probe: Probe,
        probe_interval_seconds: float = 2.0,
    ) -> None:
        self.name = name
        self._service_names = list(service_names)
        prefixes = tuple(f"/{s}/" for s in service_names)
        self.server = grpc.aio.server(
            interceptors=[ErrorInterceptor(prefixes), AuthInterceptor(verifier, prefixes)],
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.health = health_async.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self._service_names, reflection.SERVICE_NAME, "grpc.health.v1.Health"], self.server
        )
        self._grace = shutdown_grace_seconds
        self._probe, self._probe_interval = probe, probe_interval_seconds
        self._tasks: list[asyncio.Task[Any]] = []
        self._stoppable: dict[asyncio.Task[Any], Callable[[], None]] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._stopping = asyncio.Event()
        self._shutting_down = False
        self._marks: set[asyncio.Task[None]] = set()
        self.port = 0

    def add_background(
        self, name: str, coro: Coroutine[Any, Any, Any], *, stop: Callable[[], None] | None = None
    ) -> None:
        """Run `coro` until shutdown. With `stop`, shutdown asks it to finish (e.g. after the message
        in hand) and waits for that; without, it is cancelled."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        task.add_done_callback(self._worker_ended)
        if stop is not None:
            self._stoppable[task] = stop

    def _worker_ended(self, task: asyncio.Task[Any]) -> None:
        if self._stopping.is_set() or self._shutting_down:
            return
        error = None if task.cancelled() else task.exception()
        log.error("%s: background worker %s ended unexpectedly: %r", self.name, task.get_name(), error)
        mark = asyncio.get_running_loop().create_task(
            self.health.set(LIVENESS, health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        self._marks.add(mark)  # the loop keeps only weak references to tasks
        mark.add_done_callback(self._marks.discard)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run at shutdown, last registered first."""
        self._closers.append(closer)

    async def start(self, host: str, port: int) -> int:
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        await self.server.start()
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        await self._set_health(serving=await self._probe_ok())
        self.add_background("health-probe", self._probe_loop())
        log.info("%s listening on %s:%d", self.name, host, self.port)
        return self.port

    def request_stop(self) -> None:
        self._stopping.set()

    async def serve_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self._stopping.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        log.info("%s shutting down (grace %.1fs)", self.name, self._grace)
        self._shutting_down = True
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self._grace)
        await self._stop_background()
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("error while closing")
        log.info("%s stopped", self.name)

    async def _stop_background(self) -> None:
        for stop in self._stoppable.values():
            stop()
        running = {t for t in self._tasks if t not in self._stoppable}  # e.g. the probe loop: cancel
        if self._stoppable:
            _, overran = await asyncio.wait(self._stoppable, timeout=max(self._grace, 1.0))
            running |= overran
        for task in running:
            task.cancel()
        if running:
            # A cancelled task stuck inside a client library must not keep the process alive.
            _, stuck = await asyncio.wait(running, timeout=1.0)
            for task in stuck:
                log.warning("%s: background task %s did not stop in time", self.name, task.get_name())

    async def _probe_ok(self) -> bool:
        try:
            await asyncio.wait_for(self._probe(), timeout=self._probe_interval * 2)
        except Exception as exc:
            log.warning("%s dependency check failed: %s", self.name, exc)
            return False
        return True

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval)
            await self._set_health(serving=await self._probe_ok())

    async def _set_health(self, *, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", *self._service_names):
            await self.health.set(service, status)
