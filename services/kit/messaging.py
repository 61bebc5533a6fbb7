"""One NATS connection per process that reconnects forever, plus the JetStream stream setup."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from services.kit.events import SUBJECT_ROOT

log = logging.getLogger(__name__)


class NatsConnection:
    """Connects in the background (NATS may be down at start-up) and reconnects forever."""

    def __init__(self, url: str, *, name: str, stream: str, duplicate_window_seconds: float) -> None:
        self._url, self._name = url, name
        self.stream = stream
        self._duplicate_window = duplicate_window_seconds
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_loop(), name=f"nats-connect-{self._name}")

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context, waiting until the first connection is made."""
        await self._ready.wait()
        assert self._js is not None
        return self._js

    @property
    def client(self) -> Client | None:
        return self._nc

    async def _connect_loop(self) -> None:
        delay = 0.2
        while True:
            try:
                nc = await nats.connect(
                    servers=[self._url],
                    name=self._name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
            except Exception as exc:
                log.warning("NATS at %s unreachable (%s); retrying in %.1fs", self._url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._nc, self._js = nc, nc.jetstream(timeout=5)
            await self._ensure_stream_until_done()
            self._ready.set()
            log.info("connected to NATS at %s", self._url)
            return

    async def _ensure_stream_until_done(self) -> None:
        assert self._js is not None
        while True:
            try:
                await ensure_stream(self._js, self.stream, self._duplicate_window)
                return
            except Exception as exc:
                log.warning("cannot set up stream %s yet (%s); retrying", self.stream, exc)
                await asyncio.sleep(1.0)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("NATS error: %s", exc)

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")

    async def close(self) -> None:
        """Drain (flush pending publishes, let subscriptions finish) and close."""
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._nc is not None and not self._nc.is_closed:
            try:
                await asyncio.wait_for(self._nc.drain(), timeout=10)
            except Exception as exc:
                log.warning("NATS drain failed: %s", exc)
                await self._nc.close()


async def ensure_stream(js: JetStreamContext, name: str, duplicate_window_seconds: float) -> None:
    """Create the supportflow stream, or bring an existing one's settings up to date."""
    config = StreamConfig(
        name=name,
        subjects=[f"{SUBJECT_ROOT}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=duplicate_window_seconds,
        max_age=90 * 24 * 3600.0,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError:
            pass  # another process created it first
    await js.update_stream(config)
