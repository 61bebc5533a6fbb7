"""Organisations change their notices by editing files, without a restart: a broken file is
refused with every problem named (file, key, what to do), and the configuration in force keeps
notifying until a correct one replaces it."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from pathlib import Path

import pytest
from nats.aio.client import Client

from services.notify.bootstrap import Notify
from services.notify.domain.errors import RulesError
from tests.notify.conftest import MovableClock
from tests.notify.sinks import SmtpSink
from tests.notify.stream_side import Ticket, publish, ticket_number, until

BAD_BLOCK = """
[[events."ticket.closed"]]
to = "requester"
channel = "fax"
template = "closure"
"""


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


async def receipt_text(nc: Client, smtp: SmtpSink, clock: MovableClock) -> str:
    ticket = Ticket(ticket_number(), clock.now)
    await publish(nc, ticket.submitted(), ticket.classified())
    (mail,) = await smtp.wait_for(ticket.number, 1)
    return text_of(mail)


async def test_a_broken_file_is_refused_and_the_configuration_in_force_keeps_notifying(
    notify: Notify,
    nc: Client,
    smtp: SmtpSink,
    clock: MovableClock,
    config_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = config_dir / "rules.toml"
    good_rules = rules.read_text()
    rules.write_text(good_rules + BAD_BLOCK)

    async def rejected() -> RulesError | None:
        return notify.config.rejected

    refusal = await until(rejected, lambda found: found is not None)
    assert refusal is not None
    (problem,) = refusal.problems
    assert (problem.file, problem.path) == ("rules.toml", 'events."ticket.closed"[2].channel')
    assert "'fax'" in problem.message
    assert any(
        r.levelno == logging.ERROR and "rejected" in r.getMessage() and "fax" in r.getMessage() for r in caplog.records
    )

    # The previous configuration is still in force.
    assert (await receipt_text(nc, smtp, clock)).startswith("您好，您的服务单已受理")

    # A template edited correctly goes into force (the bad rules fixed at the same time)…
    template = config_dir / "templates" / "receipt.zh-CN.txt.j2"
    template.write_text(template.read_text().replace("您好，您的服务单已受理", "您好！服务单已登记", 1))
    rules.write_text(good_rules)
    reloads = notify.config.reloads

    async def reloaded() -> int:
        return notify.config.reloads

    await until(reloaded, lambda count: count > reloads)
    assert notify.config.rejected is None
    assert (await receipt_text(nc, smtp, clock)).startswith("您好！服务单已登记")

    # …and a template with a mistake is refused naming file and line, the edited one staying in force.
    template.write_text(template.read_text() + "{{ ticket.numbr }}\n")
    refusal = await until(rejected, lambda found: found is not None)
    assert refusal is not None
    (problem,) = refusal.problems
    assert problem.file == "templates/receipt.zh-CN.txt.j2"
    assert problem.path.startswith("line ")
    assert "'numbr'" in problem.message
    assert "did you mean 'number'" in problem.message
    assert (await receipt_text(nc, smtp, clock)).startswith("您好！服务单已登记")
