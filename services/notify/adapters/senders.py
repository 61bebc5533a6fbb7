"""The `Sender` port for e-mail (SMTP, stdlib smtplib) and webhooks (HTTP POST, stdlib urllib).

Both libraries block, so each send runs in a worker thread. Each sender has its own small pool of
threads instead of the event loop's shared default one: a webhook receiver that hangs until the
timeout occupies webhook threads only, and e-mail keeps flowing. Each e-mail thread keeps its SMTP
connection open between messages, as Postfix's connection cache does: a mail costs a NOOP (is the
session still there?) instead of a new connection, greeting, EHLO and, for relays, STARTTLS and
AUTH. A failed message closes its connection; the next one starts afresh.

Error texts end up in `last_error`, which agents read through ListNotifications: they name the
server and what it answered, never a URL (robot URLs carry their access tokens) or a password.

SMTP replies are read as Postfix reads them (RFC 5321 §4.2.1: 4yz transient, 5yz permanent):

- **4xx** to anything (421 closing, 450 mailbox busy, 451 local error, 452 storage): try again
  later — retried with backoff. So is no answer, a dropped connection or a timeout.
- **5xx to MAIL, RCPT or DATA** (550 no such user, 553 bad address, 552 too big, 554 rejected):
  this message will never be taken — dead at once (`DeliveryRefused`), with the server's words.
- except **552 to RCPT**: RFC 5321 §4.5.3.1.10 says it is the old "too many recipients", a 452 —
  retried;
- except **530, 534, 535, 538** (authentication or encryption required, credentials invalid), at
  AUTH or MAIL: our configuration, which someone fixes, not the message — retried (Postfix's
  `smtp_sasl_auth_soft_bounce`);
- and **5xx to the greeting, EHLO or STARTTLS** (554 "no SMTP service here"): this server, not
  the message — retried (Postfix skips a server that greets with 5xx and defers the mail).

The reply code decides, not an enhanced status code in its text (RFC 3463 requires them to agree;
when they do not, the basic code is the one RFC 5321 defines).

Webhook answers are read in `webhook_answers.py`: 408, 421, 425, 429, 5xx, no answer and a robot's
rate-limit or busy code are retried (after at least the Retry-After or rate-limit window they
name); any other 4xx, a permanent redirect and any other robot error code are dead at once.
"""

from __future__ import annotations

import asyncio
import http.client
import smtplib
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.parser import BytesHeaderParser
from urllib.parse import urlsplit

from services.notify.adapters.config_files import Endpoint
from services.notify.adapters.formats import WebhookRequest, signed_request
from services.notify.adapters.webhook_answers import read_answer
from services.notify.application.ports import Clock, DeliveryFailed, DeliveryRefused, Outgoing

#: How much of a webhook's answer is read (robots answer a line of JSON).
MAX_ANSWER_BYTES = 64 * 1024


class SmtpSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout_seconds: float,
        workers: int = 4,
    ) -> None:
        self._host, self._port = host, port
        self._username, self._password = username, password
        self._starttls, self._timeout = starttls, timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify-smtp")
        self._kept = threading.local()  # each worker thread's open connection
        self._open: set[smtplib.SMTP] = set()  # all of them, to close at shutdown
        self._open_lock = threading.Lock()

    async def send(self, item: Outgoing) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._send, item.payload, item.recipient)

    def _send(self, payload: bytes, recipient: str) -> None:
        sender = envelope_sender(payload)
        where = f"SMTP server {self._host}:{self._port}"
        try:
            smtp = self._connection()
            try:
                # The text parts are UTF-8, possibly 8-bit: say so when the server understands it.
                options = ["BODY=8BITMIME"] if smtp.has_extn("8bitmime") else []
                smtp.sendmail(sender, [recipient], payload, mail_options=options)
            except BaseException:
                self._forget(smtp)  # whatever the session's state now, the next message starts afresh
                raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()), (0, b""))
            # RFC 5321 §4.5.3.1.10: a 552 to RCPT is the old "too many recipients", really a 452.
            raise _failure(code, f"{where} refused the recipient {recipient}: {code} {_text(answer)}", 552) from None
        except smtplib.SMTPSenderRefused as exc:
            raise _failure(exc.smtp_code, f"{where} refused the sender {sender}: {_answer(exc)}") from None
        except smtplib.SMTPDataError as exc:
            raise _failure(exc.smtp_code, f"{where} refused the message: {_answer(exc)}") from None
        except smtplib.SMTPResponseException as exc:
            # The greeting, EHLO, STARTTLS or AUTH: the server or our access to it, not this message.
            raise DeliveryFailed(f"{where} answered {_answer(exc)}") from None
        except smtplib.SMTPException as exc:
            raise DeliveryFailed(f"{where}: {exc}") from None
        except OSError as exc:
            raise DeliveryFailed(f"{where} unreachable: {exc.strerror or exc}") from None

    def _connection(self) -> smtplib.SMTP:
        """This thread's connection if the server still answers on it, else a new one."""
        smtp: smtplib.SMTP | None = getattr(self._kept, "smtp", None)
        if smtp is not None:
            try:
                if smtp.noop()[0] == 250:
                    return smtp
            except (smtplib.SMTPException, OSError):
                pass  # the server ended the idle session (its timeout, a restart): connect again
            self._forget(smtp)
        smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username:
                smtp.login(self._username, self._password)
            smtp.ehlo_or_helo_if_needed()
        except BaseException:
            smtp.close()
            raise
        self._kept.smtp = smtp
        with self._open_lock:
            self._open.add(smtp)
        return smtp

    def _forget(self, smtp: smtplib.SMTP) -> None:
        self._kept.smtp = None
        with self._open_lock:
            self._open.discard(smtp)
        smtp.close()

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._open_lock:
            kept, self._open = list(self._open), set()
        for smtp in kept:  # closed, not QUIT: no waiting on the network while shutting down
            smtp.close()


def envelope_sender(payload: bytes) -> str:
    """The address of the message's From: header (the SMTP envelope sender)."""
    header = BytesHeaderParser(policy=policy.default).parsebytes(payload).get("From")
    addresses = getattr(header, "addresses", ())
    if not addresses:
        raise DeliveryFailed("the stored e-mail has no From: address")
    return str(addresses[0].addr_spec)


#: 5xx replies about our access, not the message (530 authentication required, 534 mechanism too
#: weak, 535 credentials invalid, 538 encryption required): fixing the configuration makes the same
#: message go through, so they are retried like 4xx (Postfix's smtp_sasl_auth_soft_bounce).
ACCESS_REPLIES = frozenset({530, 534, 535, 538})


def _failure(code: int, text: str, *transient_5xx: int) -> DeliveryFailed:
    """A reply to MAIL, RCPT or DATA: 5xx refuses this message for good, unless it is about our
    access (ACCESS_REPLIES) or listed in `transient_5xx`; everything else is retried."""
    if 500 <= code < 600 and code not in ACCESS_REPLIES and code not in transient_5xx:
        return DeliveryRefused(f"{text} (permanent: not retried)")
    return DeliveryFailed(text)


def _answer(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: re-posting a message elsewhere is not ours to decide."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class WebhookSender:
    def __init__(
        self,
        endpoints: Callable[[str, str], Endpoint | str],
        clock: Clock,
        *,
        timeout_seconds: float,
        workers: int = 4,
    ) -> None:
        self._endpoints, self._clock, self._timeout = endpoints, clock, timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify-webhook")
        # No proxies from the process environment (settings are the only configuration) and no redirects.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())

    async def send(self, item: Outgoing) -> None:
        if not item.webhook:
            raise DeliveryFailed("the notification names no webhook")
        endpoint = self._endpoints(item.organization, item.webhook)
        if isinstance(endpoint, str):
            raise DeliveryFailed(f"webhook '{item.webhook}' cannot be called: {endpoint}")
        request = signed_request(
            endpoint.kind, endpoint.url, item.payload, secret=endpoint.secret, now=self._clock.now()
        )
        loop = asyncio.get_running_loop()
        status, retry_after, answer = await loop.run_in_executor(self._executor, self._post, request)
        refusal = read_answer(endpoint.kind, status, answer, retry_after=retry_after, now=self._clock.now())
        if refusal is None:
            return
        where = f"webhook '{item.webhook}' ({_host(endpoint.url)})"
        if refusal.permanent:
            raise DeliveryRefused(f"{where}: {refusal.reason} (permanent: not retried)")
        raise DeliveryFailed(f"{where}: {refusal.reason}", retry_after=refusal.retry_after)

    def _post(self, request: WebhookRequest) -> tuple[int, str | None, bytes]:
        """(status, Retry-After header or None, the first MAX_ANSWER_BYTES of the body)."""
        http_request = urllib.request.Request(request.url, data=request.body, headers=request.headers, method="POST")
        try:
            with self._opener.open(http_request, timeout=self._timeout) as response:
                return int(response.status), response.headers.get("Retry-After"), bytes(response.read(MAX_ANSWER_BYTES))
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code), exc.headers.get("Retry-After"), bytes(exc.read(MAX_ANSWER_BYTES))
        except urllib.error.URLError as exc:
            reason = exc.reason if isinstance(exc.reason, str) else getattr(exc.reason, "strerror", None) or exc.reason
            raise DeliveryFailed(f"{_host(request.url)} unreachable: {reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryFailed(f"{_host(request.url)}: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _host(url: str) -> str:
    """scheme://host[:port] only: the rest of a robot's URL (and any user:password@) is a credential."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "the webhook"
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
