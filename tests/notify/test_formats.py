"""What the channels put on the wire: e-mails that thread by ticket with an encoded Chinese
subject and text + HTML parts, and the webhook requests of generic receivers, DingTalk (signed)
and WeCom robots — checked against hand-computed signatures, not against the code's own math."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2 as ev

from services.notify.adapters.formats import (
    WECOM_MAX_BYTES,
    dingtalk_markdown,
    dingtalk_sign,
    email_message,
    generic_json,
    signed_request,
    text_to_markdown,
    thread_root_id,
    webhook_request,
    wecom_markdown,
)
from services.notify.domain.planning import PlannedNotice, plan
from services.notify.domain.templates import RenderedMessage, render
from services.notify.domain.ticket_context import apply
from tests.notify.story import NUMBER, TITLE, classified, envelope, shipped, submitted

SENT_AT = datetime(2023, 10, 27, 2, 0, tzinfo=UTC)
SUBJECT = f"【技术支持】{NUMBER}号 {TITLE}"


def notices_for(payload: object) -> list[tuple[PlannedNotice, RenderedMessage]]:
    cfg = shipped()
    event = envelope(payload)  # type: ignore[arg-type]
    ctx = apply(apply(apply(None, submitted()), classified()), event)
    return [
        (n, render(cfg.templates, n.template, n.locale, n.variables))
        for n in plan(event, ctx, cfg.rules, cfg.directory)
    ]


def mail(notice: PlannedNotice, message: RenderedMessage) -> EmailMessage:
    return email_message(
        notice_key=notice.notice_key,
        ticket_number=notice.ticket_number,
        sender="ACME 技术支持 <support@acme.example>",
        to_address=notice.recipient,
        to_name=notice.recipient_name,
        message=message,
        date=SENT_AT,
        reply_to="support@acme.example",
    )


def parsed(msg: EmailMessage) -> EmailMessage:
    reparsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert isinstance(reparsed, EmailMessage)
    return reparsed


# -- e-mail -------------------------------------------------------------------------------------------------


def test_an_email_has_the_sop_subject_encoded_and_text_and_html_alternatives() -> None:
    notice, message = notices_for(ev.TicketResolved(cause="金额为空", measures="已补录"))[0]
    assert notice.channel == "email"
    raw = mail(notice, message).as_bytes()
    header_block = raw.split(b"\n\n", 1)[0]
    assert header_block.isascii()
    assert b"Subject: =?utf-8?b?" in header_block  # RFC 2047, UTF-8
    back = parsed(mail(notice, message))
    assert back["Subject"] == SUBJECT
    assert back["From"] == "ACME 技术支持 <support@acme.example>"
    assert back["To"] == "李雷 <li.lei@acme.example>"
    assert back["Reply-To"] == "support@acme.example"
    assert back["Date"] == "Fri, 27 Oct 2023 02:00:00 +0000"
    assert back["Auto-Submitted"] == "auto-generated"
    assert back["X-Supportflow-Ticket"] == NUMBER
    assert back["Content-Language"] == "zh-CN"
    assert back.get_content_type() == "multipart/alternative"
    text, html = back.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert text.get_content().startswith(f"您好，您提交的{NUMBER}号服务单已处理完成，")
    assert "请登录测试。如仍有问题，请及时联系我们" in html.get_content()


def test_every_mail_of_a_ticket_threads_under_one_root_and_a_resend_keeps_its_id() -> None:
    resolved, _ = notices_for(ev.TicketResolved(cause="c"))[0]
    survey, _ = notices_for(ev.TicketSurveyRequested())[0]
    other = envelope(ev.TicketResolved(cause="c"), number="TS20231027000002")
    root = f"<ticket-{NUMBER}@acme.example>"
    assert thread_root_id(NUMBER, "acme.example") == root
    ids = set()
    for notice in (resolved, survey):
        msg = parsed(mail(notice, render(shipped().templates, notice.template, "zh-CN", notice.variables)))
        assert msg["In-Reply-To"] == root
        assert msg["References"] == root
        assert msg["Message-ID"] == f"<{notice.notice_key}@acme.example>"
        ids.add(msg["Message-ID"])
    assert len(ids) == 2
    again = parsed(mail(resolved, render(shipped().templates, "result_notice", "zh-CN", resolved.variables)))
    assert f"<{resolved.notice_key}@acme.example>" == again["Message-ID"]
    assert thread_root_id(other.ticket_number, "acme.example") != root


def test_message_ids_use_the_given_domain_and_refuse_odd_characters() -> None:
    notice, message = notices_for(ev.TicketResolved(cause="c"))[0]
    msg = email_message(
        notice_key=notice.notice_key,
        ticket_number="TS 1<2>@x",
        sender="support@acme.example",
        to_address="li.lei@acme.example",
        to_name="",
        message=message,
        date=SENT_AT,
        domain="mail.supportflow.example",
    )
    assert msg["References"] == "<ticket-TS-1-2--x@mail.supportflow.example>"
    with pytest.raises(ValueError, match="no address"):
        email_message(
            notice_key="k",
            ticket_number=NUMBER,
            sender="Support",
            to_address="a@b.example",
            to_name="",
            message=message,
            date=SENT_AT,
        )


# -- webhooks -----------------------------------------------------------------------------------------------

MESSAGE = RenderedMessage(
    subject=SUBJECT,
    text="服务单 TS20231027000001 的解决时限已超时。\n\n标题：月度销售报表导出失败\n- 处理人：王芳\n",
    html="<p>…</p>",
    locale="zh-CN",
)
NOW = datetime.fromtimestamp(1_700_000_000, tz=UTC)


def test_dingtalk_signature_matches_a_hand_computed_one() -> None:
    # printf '1700000000000\nSEC0123456789abcdef' | openssl dgst -sha256 -hmac 'SEC0123456789abcdef' -binary | base64
    #   → TSZbRFUuvaSQaRKUpF970OPCb2/LcQAP3wOvwZIzBZk=   (then URL-encoded: / → %2F, = → %3D)
    assert dingtalk_sign("SEC0123456789abcdef", 1_700_000_000_000) == "TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D"


def test_a_signed_dingtalk_robot_gets_markdown_and_the_signature_in_its_url() -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    request = dingtalk_markdown(url, MESSAGE, secret="SEC0123456789abcdef", now=NOW)
    assert request.url == url + "&timestamp=1700000000000&sign=TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D"
    assert request.headers == {"Content-Type": "application/json; charset=utf-8"}
    body = json.loads(request.body)
    assert body == {
        "msgtype": "markdown",
        "markdown": {
            "title": SUBJECT,
            "text": f"### {SUBJECT}\n\n服务单 TS20231027000001 的解决时限已超时。  \n\n标题：月度销售报表导出失败  \n"
            "- 处理人：王芳\n",
        },
    }
    assert "服务单".encode() in request.body  # UTF-8, not \\u escapes
    unsigned = dingtalk_markdown(url, MESSAGE, now=NOW)
    assert unsigned.url == url


def test_a_wecom_robot_gets_markdown_content_and_no_signature() -> None:
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx"
    request = wecom_markdown(url, MESSAGE)
    assert request.url == url
    assert json.loads(request.body) == {
        "msgtype": "markdown",
        "markdown": {"content": text_to_markdown(SUBJECT, MESSAGE.text)},
    }
    long = RenderedMessage(SUBJECT, "很长的说明。" * 1000, "", "zh-CN")
    content = json.loads(wecom_markdown(url, long).body)["markdown"]["content"]
    assert len(content.encode()) <= WECOM_MAX_BYTES
    assert content.endswith("…")


def test_a_generic_webhook_is_json_signed_over_timestamp_and_body() -> None:
    # printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec' -hex
    request = generic_json("https://hooks.example/x", {"a": 1}, secret="whsec", now=NOW)
    assert request.body == b'{"a":1}'
    assert request.headers["X-Supportflow-Timestamp"] == "1700000000"
    assert request.headers["X-Supportflow-Signature"] == (
        "sha256=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032"
    )
    unsigned = generic_json("https://hooks.example/x", {"a": 1}, now=NOW)
    assert "X-Supportflow-Signature" not in unsigned.headers


def test_a_planned_webhook_notice_is_built_for_its_robot_kind() -> None:
    cfg = shipped()
    event = classified(types_pb2.PRIORITY_P0)  # the team robot hears of it
    ctx = apply(apply(None, submitted()), event)
    robot = plan(event, ctx, cfg.rules, cfg.directory)[-1]
    message = render(cfg.templates, robot.template, robot.locale, robot.variables)
    url, headers, body = webhook_request(robot, message, url="https://qyapi.weixin.qq.com/x?key=k", now=NOW)
    assert url == "https://qyapi.weixin.qq.com/x?key=k"
    assert json.loads(body)["markdown"]["content"].startswith(f"### {SUBJECT}\n\n新的紧急服务单已分派到本团队")
    assert headers["Content-Type"].startswith("application/json")
    assert robot.webhook is not None
    generic = replace(robot, webhook=replace(robot.webhook, kind="generic"))
    _, generic_headers, generic_body = webhook_request(generic, message, url="https://h.example", secret="s", now=NOW)
    payload = json.loads(generic_body)
    assert payload["notice_key"] == robot.notice_key == generic_headers["Idempotency-Key"]
    assert (payload["event_type"], payload["ticket_number"], payload["subject"]) == (
        "ticket.classified",
        NUMBER,
        SUBJECT,
    )


@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "generic"])
def test_a_stored_body_signed_later_is_the_request_built_at_that_time(kind: str) -> None:
    cfg = shipped()
    event = classified(types_pb2.PRIORITY_P0)
    ctx = apply(apply(None, submitted()), event)
    robot = plan(event, ctx, cfg.rules, cfg.directory)[-1]
    assert robot.webhook is not None
    robot = replace(robot, webhook=replace(robot.webhook, kind=kind))
    message = render(cfg.templates, robot.template, robot.locale, robot.variables)
    stored = webhook_request(robot, message, url="", now=NOW).body  # what notify keeps with the notice
    later = datetime(2023, 10, 27, 5, 0, tzinfo=UTC)  # a retry hours later signs afresh
    secret = "" if kind == "wecom" else "SEC123"
    url = "https://robot.example/send?access_token=t"
    assert signed_request(kind, url, stored, secret=secret, now=later) == webhook_request(
        robot, message, url=url, secret=secret, now=later
    )
