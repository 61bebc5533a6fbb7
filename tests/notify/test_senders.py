"""The senders against real servers: an e-mail arrives as stored, from the address of its From:
header; a webhook call is signed at the moment it is made; and every failure — a refused
recipient, a server that is not there, an HTTP error, a robot's errcode, a receiver that does not
answer in time — becomes a reason an operator can act on, without the robot's credentials in it:
final when trying again cannot help, else with the least wait the receiver asked for."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.notify.adapters.config_files import Endpoint
from services.notify.adapters.senders import SmtpSender, WebhookSender
from services.notify.application.ports import DeliveryFailed, DeliveryRefused, Outgoing
from tests.notify.sinks import GreetingRefusingServer, HttpSink, SmtpSink
from tests.support.processes import free_port

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
MAIL = (
    "From: =?utf-8?b?5oqA5pyv5pSv5oyB?= <support@acme.example>\r\n"
    "To: li.lei@acme.example\r\n"
    "Subject: receipt\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "您好，您的服务单已受理。\r\n"
    ".a line starting with a dot\r\n"
).encode()
BODY = b'{"notice_key":"k1","subject":"s","text":"t"}'


def outgoing(channel: str = "email", *, recipient: str = "li.lei@acme.example", payload: bytes = MAIL) -> Outgoing:
    return Outgoing(
        notification_id="n1",
        notice_key="k1",
        organization="acme",
        ticket_number="TS20260302000001",
        event_type="ticket.classified",
        channel=channel,  # type: ignore[arg-type]
        recipient=recipient,
        webhook="hook" if channel == "webhook" else None,
        payload=payload,
        attempts=0,
        last_error="",
    )


class Clock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def http() -> Iterator[HttpSink]:
    sink = HttpSink()
    sink.start()
    yield sink
    sink.stop()


async def test_an_email_arrives_as_stored(smtp: SmtpSink) -> None:
    sender = SmtpSender(host="127.0.0.1", port=smtp.port, timeout_seconds=5)
    await sender.send(outgoing())
    (received,) = smtp.received
    assert received.mail_from == "support@acme.example"
    assert received.rcpt_tos == ("li.lei@acme.example",)
    assert received.data == MAIL  # dot-stuffing undone by the server: byte for byte
    await sender.close()


async def test_mails_share_a_connection_and_a_server_restart_costs_none(smtp: SmtpSink) -> None:
    sender = SmtpSender(host="127.0.0.1", port=smtp.port, timeout_seconds=5, workers=1)
    for _ in range(3):
        await sender.send(outgoing())
    assert len(smtp.received) == 3
    assert smtp.sessions == 1, "one connection, greeting and EHLO for the three mails"

    smtp.stop()  # the kept session ends with the server, as after its idle timeout
    smtp.start()
    await sender.send(outgoing())  # a NOOP finds the session gone: a new one, not a failed attempt
    assert len(smtp.received) == 4
    assert smtp.sessions == 2
    await sender.close()


async def test_a_refused_recipient_and_a_missing_server_are_reasons(smtp: SmtpSink) -> None:
    smtp.refuse_next = 1
    sender = SmtpSender(host="127.0.0.1", port=smtp.port, timeout_seconds=5)
    with pytest.raises(DeliveryFailed, match=r"refused the recipient li\.lei@acme\.example: 450 4\.2\.0 mailbox busy"):
        await sender.send(outgoing())
    nowhere = SmtpSender(host="127.0.0.1", port=free_port(), timeout_seconds=2)
    with pytest.raises(DeliveryFailed, match=r"SMTP server 127\.0\.0\.1:\d+ unreachable"):
        await nowhere.send(outgoing())
    await sender.close()
    await nowhere.close()


@pytest.mark.parametrize(
    ("command", "reply", "permanent", "reason"),
    [
        ("RCPT", "550 5.1.1 no such user", True, "refused the recipient li.lei@acme.example: 550 5.1.1 no such user"),
        ("RCPT", "554 5.7.1 relaying denied", True, "refused the recipient li.lei@acme.example: 554"),
        ("RCPT", "552 5.2.2 mailbox full", False, "refused the recipient li.lei@acme.example: 552"),
        ("RCPT", "451 4.7.1 greylisted, try again", False, "451 4.7.1 greylisted"),
        ("MAIL", "553 5.1.8 sender domain does not exist", True, "refused the sender support@acme.example: 553"),
        ("MAIL", "530 5.7.0 authentication required", False, "refused the sender support@acme.example: 530"),
        ("MAIL", "421 4.3.2 service shutting down", False, "421 4.3.2"),
        ("DATA", "554 5.6.0 transaction failed: content rejected", True, "refused the message: 554 5.6.0"),
        ("DATA", "552 5.3.4 message too big", True, "refused the message: 552 5.3.4"),
        ("DATA", "451 4.3.0 local error in processing", False, "refused the message: 451 4.3.0"),
    ],
)
async def test_a_5xx_refuses_the_message_for_good_and_a_4xx_is_tried_again(
    smtp: SmtpSink, command: str, reply: str, permanent: bool, reason: str
) -> None:
    smtp.replies[command].append(reply)
    sender = SmtpSender(host="127.0.0.1", port=smtp.port, timeout_seconds=5)
    with pytest.raises(DeliveryFailed) as failed:
        await sender.send(outgoing())
    assert isinstance(failed.value, DeliveryRefused) is permanent
    assert reason in str(failed.value)
    assert ("permanent: not retried" in str(failed.value)) is permanent
    await sender.send(outgoing())  # the next try is accepted: the server said what it said once
    assert len(smtp.received) == 1
    await sender.close()


async def test_a_server_refusing_us_rather_than_the_message_is_tried_again() -> None:
    # A host without mail service greets with 554: the server, not the message (Postfix defers).
    refuser = GreetingRefusingServer()
    refuser.start()
    nowhere = SmtpSender(host="127.0.0.1", port=refuser.port, timeout_seconds=5)
    with pytest.raises(DeliveryFailed, match=r"answered 554 5\.3\.2 no SMTP service here") as greeted:
        await nowhere.send(outgoing())
    assert not isinstance(greeted.value, DeliveryRefused)
    assert refuser.connections == 1
    refuser.stop()
    # Wrong credentials: 535, our configuration; once fixed, the same message goes through.
    guarded = SmtpSink(credentials=("notify", "right"))
    guarded.start()
    wrong = SmtpSender(host="127.0.0.1", port=guarded.port, username="notify", password="wrong", timeout_seconds=5)
    with pytest.raises(DeliveryFailed, match="answered 535") as denied:
        await wrong.send(outgoing())
    assert not isinstance(denied.value, DeliveryRefused)
    assert "wrong" not in str(denied.value)
    fixed = SmtpSender(host="127.0.0.1", port=guarded.port, username="notify", password="right", timeout_seconds=5)
    await fixed.send(outgoing())
    assert [r.rcpt_tos for r in guarded.received] == [("li.lei@acme.example",)]
    guarded.stop()
    for sender in (nowhere, wrong, fixed):
        await sender.close()


def webhook_sender(http: HttpSink, kind: str, path: str, secret: str = "", timeout: float = 5) -> WebhookSender:
    def endpoint(org: str, name: str) -> Endpoint | str:
        if (org, name) != ("acme", "hook"):
            return "not configured"
        return Endpoint(kind, http.url(path), secret)  # type: ignore[arg-type]

    return WebhookSender(endpoint, Clock(), timeout_seconds=timeout)


async def test_a_generic_webhook_is_signed_when_it_is_called(http: HttpSink) -> None:
    sender = webhook_sender(http, "generic", "/hook?token=abc", secret="s3cret")
    await sender.send(outgoing("webhook", payload=BODY))
    (request,) = http.requests
    assert request.body == BODY
    assert request.headers["Idempotency-Key"] == "k1"
    timestamp = request.headers["X-Supportflow-Timestamp"]
    assert timestamp == str(int(NOW.timestamp()))
    digest = hmac.new(b"s3cret", timestamp.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    assert request.headers["X-Supportflow-Signature"] == f"sha256={digest}"
    await sender.close()


@pytest.mark.parametrize(
    ("kind", "answer", "permanent", "reason"),
    [
        ("generic", (500, b"upstream down"), False, "HTTP 500: upstream down"),
        ("generic", (502, b"<html>bad gateway</html>"), False, "HTTP 502: <html>bad gateway</html>"),
        ("generic", (408, b""), False, "HTTP 408"),
        ("generic", (302, b""), False, "HTTP 302"),
        ("generic", (400, b'{"error":"unknown field"}'), True, 'HTTP 400: {"error":"unknown field"}'),
        ("generic", (401, b"bad signature"), True, "HTTP 401: bad signature"),
        ("generic", (403, b"forbidden"), True, "HTTP 403: forbidden"),
        ("generic", (404, b"no such hook"), True, "HTTP 404: no such hook"),
        ("generic", (410, b"hook deleted"), True, "HTTP 410: hook deleted"),
        ("generic", (413, b"too large"), True, "HTTP 413: too large"),
        ("generic", (422, b"bad ticket"), True, "HTTP 422: bad ticket"),
        ("generic", (308, b""), True, "HTTP 308"),
        ("dingtalk", (200, b'{"errcode":310000,"errmsg":"keywords not in content"}'), True, "errcode 310000: keywords"),
        ("dingtalk", (200, b'{"errcode":-1,"errmsg":"system busy"}'), False, "dingtalk errcode -1: system busy"),
        ("wecom", (200, b'{"errcode":93000,"errmsg":"invalid webhook url"}'), True, "wecom errcode 93000"),
        ("wecom", (200, b'{"errcode":45009,"errmsg":"api freq out of limit"}'), False, "wecom errcode 45009"),
    ],
)
async def test_a_refusal_is_a_failure_with_the_receivers_words_final_or_not(
    http: HttpSink, kind: str, answer: tuple[int, bytes], permanent: bool, reason: str
) -> None:
    http.script.append(answer)
    sender = webhook_sender(http, kind, "/robot/send?access_token=SECRET-TOKEN")
    with pytest.raises(DeliveryFailed) as failed:
        await sender.send(outgoing("webhook", payload=BODY))
    assert isinstance(failed.value, DeliveryRefused) is permanent
    assert ("permanent: not retried" in str(failed.value)) is permanent
    assert reason in str(failed.value)
    assert f"webhook 'hook' (http://127.0.0.1:{http.port})" in str(failed.value)
    assert "SECRET-TOKEN" not in str(failed.value)
    await sender.send(outgoing("webhook", payload=BODY))  # the next call is taken: it said so once
    assert len(http.requests) == 2
    await sender.close()


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        ((429, b"slow down", {"Retry-After": "120"}), timedelta(seconds=120)),
        ((503, b"maintenance", {"Retry-After": "Mon, 02 Mar 2026 01:30:00 GMT"}), timedelta(minutes=30)),
        ((413, b"busy, send it later", {"Retry-After": "30"}), timedelta(seconds=30)),
        ((429, b"slow down"), None),
    ],
)
async def test_a_receiver_asking_to_wait_says_how_long(
    http: HttpSink, answer: tuple[int, bytes, dict[str, str]], wait: timedelta | None
) -> None:
    http.script.append(answer)
    sender = webhook_sender(http, "generic", "/hook")
    with pytest.raises(DeliveryFailed) as failed:
        await sender.send(outgoing("webhook", payload=BODY))
    assert not isinstance(failed.value, DeliveryRefused)
    assert failed.value.retry_after == wait
    if wait is not None:
        assert f"(Retry-After {int(wait.total_seconds())} s)" in str(failed.value)
    await sender.close()


@pytest.mark.parametrize(
    ("kind", "answer", "wait"),
    [
        ("dingtalk", b'{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}', 600),
        ("wecom", b'{"errcode":45009,"errmsg":"api freq out of limit"}', 60),
    ],
)
async def test_a_rate_limited_robot_names_its_window(http: HttpSink, kind: str, answer: bytes, wait: int) -> None:
    """DingTalk throttles a robot for 10 minutes after 20 messages in a minute; WeCom allows 20 a
    minute: each one's rate-limit answer carries the least wait before the next try."""
    http.script.append((200, answer))
    sender = webhook_sender(http, kind, "/robot/send")
    with pytest.raises(DeliveryFailed) as failed:
        await sender.send(outgoing("webhook", payload=BODY))
    assert not isinstance(failed.value, DeliveryRefused)
    assert failed.value.retry_after == timedelta(seconds=wait)
    await sender.close()


async def test_a_receiver_that_does_not_answer_in_time_or_at_all_is_a_failure(http: HttpSink) -> None:
    http.gate.clear()
    slow = webhook_sender(http, "generic", "/hook", timeout=0.3)
    with pytest.raises(DeliveryFailed, match="timed out"):
        await slow.send(outgoing("webhook", payload=BODY))
    http.gate.set()

    def gone(org: str, name: str) -> Endpoint:
        return Endpoint("generic", f"http://127.0.0.1:{free_port()}/hook?key=SECRET")

    refused = WebhookSender(gone, Clock(), timeout_seconds=2)
    with pytest.raises(DeliveryFailed, match="unreachable") as failed:
        await refused.send(outgoing("webhook", payload=BODY))
    assert "SECRET" not in str(failed.value)

    unknown = webhook_sender(http, "generic", "/hook")
    with pytest.raises(DeliveryFailed, match="webhook 'other' cannot be called: not configured"):
        await unknown.send(replace(outgoing("webhook", payload=BODY), webhook="other"))
    for sender in (slow, refused, unknown):
        await sender.close()
