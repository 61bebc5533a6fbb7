"""Recording an event (the use case the consumer runs in its transaction), against an in-memory
store: in-app notices are delivered by being stored, e-mails and webhook calls wait for their
sender, a notice that cannot be built is stored dead with the reason, and nothing is stored twice."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy

from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2 as ev

from services.notify.adapters.composer import WireComposer
from services.notify.adapters.config_files import resolve_webhooks
from services.notify.application.ports import ActiveConfig, NewNotification
from services.notify.application.recording import record_event
from services.notify.domain.config import NotifyConfig, load_notify_config
from services.notify.domain.delivery import Status
from services.notify.domain.event import TicketEvent
from services.notify.domain.ticket_context import TicketContext
from tests.notify.story import NUMBER, classified, envelope, notify_files, shipped, submitted

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
ENV = {
    "NOTIFY_ACME_OPS_DINGTALK_URL": "https://oapi.dingtalk.com/robot/send?access_token=x",
    "NOTIFY_ACME_OPS_DINGTALK_SECRET": "SECx",
    "NOTIFY_ACME_DEV_WECOM_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=y",
    "NOTIFY_GLOBEX_OPS_SECRET": "z",
}


class MemoryStore:
    def __init__(self) -> None:
        self.contexts: dict[tuple[str, str], TicketContext] = {}
        self.notifications: dict[str, NewNotification] = {}

    async def load_context(self, organization: str, ticket_number: str) -> TicketContext | None:
        return self.contexts.get((organization, ticket_number))

    async def save_context(self, context: TicketContext, now: datetime, *, new: bool) -> None:
        assert new == ((context.org, context.number) not in self.contexts)
        self.contexts[(context.org, context.number)] = context

    async def add_notifications(self, notifications: Sequence[NewNotification]) -> list[NewNotification]:
        added = [n for n in notifications if n.notice_key not in self.notifications]
        self.notifications.update((n.notice_key, n) for n in added)
        return added


class Counting:
    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"n-{next(self._ids)}"


def active(config: NotifyConfig | None = None, env: dict[str, str] | None = None) -> ActiveConfig:
    config = config or shipped()
    _, problems = resolve_webhooks(config, ENV if env is None else env)
    return ActiveConfig(config, {where: str(p) for where, p in problems.items()})


async def record(store: MemoryStore, event: TicketEvent, config: ActiveConfig | None = None) -> list[NewNotification]:
    before = set(store.notifications)
    await record_event(store, config or active(), event, now=NOW, ids=Counting(), composer=WireComposer("sf.example"))
    return [n for key, n in store.notifications.items() if key not in before]


async def test_in_app_is_sent_when_stored_and_email_waits_for_its_sender() -> None:
    store = MemoryStore()
    assert await record(store, submitted()) == []  # nobody is told of a mere submission
    stored = {n.channel: n for n in await record(store, classified())}
    assert set(stored) == {"email", "in_app"}
    assert (stored["in_app"].status, stored["in_app"].sent_at, stored["in_app"].payload) == (Status.SENT, NOW, b"")
    mail = stored["email"]
    assert (mail.status, mail.next_attempt_at, mail.sent_at, mail.last_error) == (Status.PENDING, NOW, None, "")
    parsed = message_from_bytes(mail.payload, policy=policy.default)
    assert parsed["To"] == "李雷 <li.lei@acme.example>"
    assert parsed["Message-ID"] == f"<{mail.notice_key}@sf.example>"
    assert b"\r\n" in mail.payload
    assert b"\n" not in mail.payload.replace(b"\r\n", b"")  # RFC 5322 line ends only
    assert store.contexts[("acme", NUMBER)].priority == "P1"


async def test_an_event_recorded_twice_adds_nothing_the_second_time() -> None:
    store = MemoryStore()
    await record(store, submitted())
    event = classified()
    first = await record(store, event)
    assert len(first) == 2
    assert await record(store, event) == []
    assert len(store.notifications) == 2


async def test_a_webhook_whose_url_is_not_configured_is_stored_dead_with_the_reason_and_can_be_sent_later() -> None:
    store = MemoryStore()
    config = active(env={})  # in dev/test the configuration still loads; those notices die at once
    await record(store, submitted(), config)
    stored = await record(store, classified(types_pb2.PRIORITY_P0), config)
    (hook,) = [n for n in stored if n.channel == "webhook"]
    assert hook.status == Status.DEAD
    assert hook.webhook == "acme-dev-wecom"
    assert "webhook 'acme-dev-wecom' cannot be called" in hook.last_error
    assert "NOTIFY_ACME_DEV_WECOM_URL is not set" in hook.last_error
    assert hook.payload  # built: RetryNotification can send it once the variable is set
    assert {n.status for n in stored if n.channel != "webhook"} == {Status.PENDING, Status.SENT}


async def test_a_template_failing_on_the_data_makes_a_dead_notice_naming_file_and_line() -> None:
    files = notify_files()
    name = "templates/receipt.zh-CN.txt.j2"
    files[name] = files[name] + b"\n{{ ticket.sla_targets['weekend'] }}\n"
    config = active(load_notify_config(files))
    store = MemoryStore()
    await record(store, submitted(), config)
    stored = await record(store, classified(), config)
    assert {n.status for n in stored} == {Status.DEAD}
    for notice in stored:
        assert notice.last_error.startswith(f"the template failed: {name}, line ")
        assert "weekend" in notice.last_error
        assert (notice.payload, notice.body) == (b"", "")


async def test_an_address_the_mail_format_refuses_makes_a_dead_notice() -> None:
    store = MemoryStore()
    event = submitted()
    contact = {**event.payload["contact"], "email": "li.lei at acme"}
    await record(store, replace(event, payload={**event.payload, "contact": contact}))
    stored = {n.channel: n for n in await record(store, classified())}
    assert stored["email"].status == Status.DEAD
    assert stored["email"].last_error.startswith("cannot build the email message:")
    assert not stored["email"].payload
    assert stored["in_app"].status == Status.SENT


async def test_an_event_about_no_ticket_is_ignored() -> None:
    store = MemoryStore()
    assert await record(store, envelope(ev.TicketCancelled(reason="duplicate"), number="")) == []
    assert store.contexts == {}
