"""The `Composer` port: a rendered notice in its wire form, built when the notice is stored (so a
retry sends the same bytes). Webhook bodies are stored unsigned; the sender signs each attempt."""

from __future__ import annotations

from datetime import datetime
from email.errors import MessageError
from email.policy import EmailPolicy

from services.notify.adapters.formats import email_message, webhook_request
from services.notify.application.ports import ComposeFailed
from services.notify.domain.directory import OrgDirectory
from services.notify.domain.planning import PlannedNotice
from services.notify.domain.templates import RenderedMessage


class _WirePolicy(EmailPolicy):
    """RFC 5322 on the wire: CRLF line ends (SMTP servers read lines by them and refuse bare LF),
    and message ids never folded — a Message-ID folded onto a line of its own reads back with a
    leading space in some parsers (Python's among them), and then the ticket's thread breaks."""

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in ("message-id", "in-reply-to", "references"):
            return f"{name}: {str(value).strip()}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


WIRE = _WirePolicy(linesep="\r\n")


class WireComposer:
    def __init__(self, mail_domain: str) -> None:
        #: The domain of Message-IDs and of each ticket's thread root, the same for every organisation.
        self._domain = mail_domain

    def email(self, notice: PlannedNotice, message: RenderedMessage, org: OrgDirectory, now: datetime) -> bytes:
        try:
            msg = email_message(
                notice_key=notice.notice_key,
                ticket_number=notice.ticket_number,
                sender=org.mail_from,
                to_address=notice.recipient,
                to_name=notice.recipient_name,
                message=message,
                date=now,
                domain=self._domain,
                reply_to=org.reply_to,
            )
            return msg.as_bytes(policy=WIRE)
        except (ValueError, MessageError) as exc:
            raise ComposeFailed(str(exc)) from None

    def webhook_body(self, notice: PlannedNotice, message: RenderedMessage, now: datetime) -> bytes:
        try:
            return webhook_request(notice, message, url="", now=now).body
        except ValueError as exc:
            raise ComposeFailed(str(exc)) from None
