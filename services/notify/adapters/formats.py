"""What notify's channels put on the wire, built but not sent: e-mails (`email.message.EmailMessage`)
and webhook requests (`WebhookRequest`: url, headers, body). Pure: no sockets, no clock, no
environment; the caller passes the time and the secrets.

E-mail threading: every mail of a ticket has the same subject (SOP §10) and points at the same
thread root, `<ticket-TS…@domain>`, with In-Reply-To and References, so mail clients show a
ticket's mails as one conversation. Its own Message-ID comes from the notice key, so a retried
send is recognisably the same message.

Webhooks: `generic` is JSON signed with HMAC-SHA256 when it has a secret; `dingtalk` and `wecom`
are their group robots' markdown messages. DingTalk signs (加签): the URL gets `&timestamp=…&sign=…`
where sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))). WeCom
robots carry their key in the URL and are not signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Final, NamedTuple
from urllib.parse import quote_plus

from services.notify.domain.planning import PlannedNotice
from services.notify.domain.templates import RenderedMessage

#: WeCom robots refuse markdown content over 4096 bytes of UTF-8.
WECOM_MAX_BYTES: Final = 4096
#: DingTalk robots accept about 20,000 characters; stay well below.
DINGTALK_MAX_CHARS: Final = 15_000
SIGNATURE_HEADER: Final = "X-Supportflow-Signature"
TIMESTAMP_HEADER: Final = "X-Supportflow-Timestamp"


class WebhookRequest(NamedTuple):
    url: str
    headers: dict[str, str]
    body: bytes


# -- e-mail -------------------------------------------------------------------------------------


def thread_root_id(ticket_number: str, domain: str) -> str:
    """The Message-ID every mail of a ticket refers to: `<ticket-TS20231027000001@support.example.com>`."""
    return f"<ticket-{_id_part(ticket_number)}@{_id_part(domain)}>"


def message_id(notice_key: str, domain: str) -> str:
    return f"<{_id_part(notice_key)}@{_id_part(domain)}>"


def email_message(
    *,
    notice_key: str,
    ticket_number: str,
    sender: str,
    to_address: str,
    to_name: str,
    message: RenderedMessage,
    date: datetime,
    domain: str = "",
    reply_to: str = "",
) -> EmailMessage:
    """A multipart/alternative (text, HTML) e-mail. `sender` is a mailbox such as
    "技术支持 <support@example.com>"; `domain` (for the Message-IDs) defaults to the sender's."""
    sender_name, sender_address = parseaddr(sender)
    if "@" not in sender_address:
        raise ValueError(f"sender {sender!r} has no address")
    domain = domain or sender_address.rsplit("@", 1)[1]
    msg = EmailMessage()
    msg["From"] = _address(sender_name, sender_address)
    msg["To"] = _address(to_name, to_address)
    if reply_to:
        name, address = parseaddr(reply_to)
        msg["Reply-To"] = _address(name, address)
    # The subject is one line already (templates.render); the policy encodes it (RFC 2047, UTF-8).
    msg["Subject"] = message.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id(notice_key, domain)
    root = thread_root_id(ticket_number, domain)
    msg["In-Reply-To"] = root
    msg["References"] = root
    # RFC 3834: no out-of-office replies to machine mail, and no loops with them.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Supportflow-Ticket"] = ticket_number
    msg.set_content(message.text, subtype="plain", charset="utf-8")
    msg.add_alternative(message.html, subtype="html", charset="utf-8")
    # After the content: set_content drops every Content-* header set before it.
    msg["Content-Language"] = message.locale
    return msg


def _address(name: str, address: str) -> Address:
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        raise ValueError(f"{address!r} is not an e-mail address")
    return Address(display_name=" ".join(name.split()), username=local, domain=domain)


def _id_part(text: str) -> str:
    # Message-IDs allow no spaces, angle brackets or @ inside a part.
    return re.sub(r"[^A-Za-z0-9._+-]", "-", text)


# -- webhooks -----------------------------------------------------------------------------------


def webhook_request(
    notice: PlannedNotice,
    message: RenderedMessage,
    *,
    url: str,
    secret: str = "",
    now: datetime,
) -> WebhookRequest:
    """The request for `notice` on its webhook; `url` and `secret` are the resolved values of the
    webhook's url/url_env and secret_env."""
    hook = notice.webhook
    if hook is None:
        raise ValueError(f"notice {notice.notice_key} is not for a webhook")
    if hook.kind == "dingtalk":
        return dingtalk_markdown(url, message, secret=secret, now=now)
    if hook.kind == "wecom":
        return wecom_markdown(url, message)
    return generic_json(url, generic_payload(notice, message), secret=secret, now=now)


def generic_payload(notice: PlannedNotice, message: RenderedMessage) -> dict[str, Any]:
    return {
        "notice_key": notice.notice_key,
        "event_id": notice.event_id,
        "event_type": notice.event_type,
        "organization": notice.organization,
        "ticket_number": notice.ticket_number,
        "template": notice.template,
        "locale": message.locale,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
    }


def generic_json(url: str, payload: dict[str, Any], *, secret: str = "", now: datetime) -> WebhookRequest:
    """JSON POST. With a secret: `X-Supportflow-Timestamp: <unix seconds>` and
    `X-Supportflow-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`; the
    receiver recomputes it and rejects old timestamps (replays)."""
    body = _json(payload)
    return WebhookRequest(url, _generic_headers(body, str(payload.get("notice_key", "")), secret, now), body)


def _generic_headers(body: bytes, notice_key: str, secret: str, now: datetime) -> dict[str, str]:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if notice_key:
        headers["Idempotency-Key"] = notice_key
    if secret:
        timestamp = str(int(now.timestamp()))
        digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = f"sha256={digest}"
    return headers


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: URL-encoded base64 of HMAC-SHA256(secret, f"{timestamp}\\n{secret}")."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def dingtalk_markdown(url: str, message: RenderedMessage, *, secret: str = "", now: datetime) -> WebhookRequest:
    text = _truncate_chars(text_to_markdown(message.subject, message.text), DINGTALK_MAX_CHARS)
    body = _json({"msgtype": "markdown", "markdown": {"title": message.subject, "text": text}})
    return WebhookRequest(_dingtalk_url(url, secret, now), {"Content-Type": "application/json; charset=utf-8"}, body)


def _dingtalk_url(url: str, secret: str, now: datetime) -> str:
    if not secret:
        return url
    timestamp = int(now.timestamp() * 1000)
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={dingtalk_sign(secret, timestamp)}"


def wecom_markdown(url: str, message: RenderedMessage) -> WebhookRequest:
    content = _truncate_bytes(text_to_markdown(message.subject, message.text), WECOM_MAX_BYTES)
    body = _json({"msgtype": "markdown", "markdown": {"content": content}})
    return WebhookRequest(url, {"Content-Type": "application/json; charset=utf-8"}, body)


def signed_request(kind: str, url: str, body: bytes, *, secret: str = "", now: datetime) -> WebhookRequest:
    """The request for a body built earlier by `webhook_request` (stored with the notice), signed
    at `now`: each attempt signs afresh, because DingTalk refuses a timestamp over an hour old and
    generic receivers reject old ones as replays. Same result as `webhook_request` at that time."""
    if kind == "dingtalk":
        return WebhookRequest(
            _dingtalk_url(url, secret, now), {"Content-Type": "application/json; charset=utf-8"}, body
        )
    if kind == "wecom":
        return WebhookRequest(url, {"Content-Type": "application/json; charset=utf-8"}, body)
    try:
        notice_key = json.loads(body).get("notice_key", "")
    except (ValueError, AttributeError):
        notice_key = ""
    return WebhookRequest(url, _generic_headers(body, str(notice_key), secret, now), body)


def text_to_markdown(subject: str, text: str) -> str:
    """The subject as a heading, then the text. Robot markdown joins single line breaks, so each
    line ends with a hard break (two spaces), except inside lists and between paragraphs."""
    lines = [f"### {subject}", ""]
    for line in text.strip().splitlines():
        stripped = line.rstrip()
        lines.append(stripped if not stripped or stripped.lstrip().startswith(("- ", "* ")) else stripped + "  ")
    return "\n".join(lines).rstrip() + "\n"


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _truncate_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _truncate_bytes(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    cut = encoded[: limit - len("…".encode())].decode("utf-8", "ignore")
    return cut + "…"
