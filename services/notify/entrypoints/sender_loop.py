"""One loop per channel sends what is due (`deliver_due`), so a slow or failing webhook never holds
up e-mail. Between rounds a loop sleeps `poll_seconds`, or less when woken: by the consumer after
it stored new notices, or by RetryNotification. Any number of replicas run these loops; claims
never overlap (see SqlDeliveryStore.claim_due)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from services.notify.application.delivering import DeliveryDeps, deliver_due
from services.notify.application.ports import Outgoing, Sender
from services.notify.domain.delivery import Outcome
from services.notify.domain.rules import Channel

log = logging.getLogger(__name__)

OnOutcomes = Callable[[Channel, Sequence[tuple[Outgoing, Outcome]]], None]


class ChannelSender:
    def __init__(
        self,
        channel: Channel,
        sender: Sender,
        deps: DeliveryDeps,
        *,
        poll_seconds: float,
        on_outcomes: OnOutcomes = lambda channel, outcomes: None,
    ) -> None:
        self.channel = channel
        self._sender, self._deps, self._poll = sender, deps, poll_seconds
        self._on_outcomes = on_outcomes
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self.rounds = 0

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        """Finish the sends in hand, then `run` returns."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.clear()  # before looking: a wake-up during the round means "look again"
            full = False
            try:
                outcomes = await deliver_due(self.channel, self._sender, self._deps)
                self.rounds += 1
                if outcomes:
                    self._on_outcomes(self.channel, outcomes)
                full = len(outcomes) >= self._deps.batch
            except Exception as exc:
                log.warning("%s sender: %s; trying again in %.1fs", self.channel, exc, self._poll)
            if full or self._stopping.is_set():
                continue  # more may be due: go on at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll)
