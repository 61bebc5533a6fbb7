"""The `Sender` port for e-mail (SMTP, stdlib smtplib) and webhooks (HTTP POST, stdlib urllib).

Both libraries block, so each send runs in a worker thread. Each sender has its own small pool of
threads instead of the event loop's shared default one: a webhook receiver that hangs until the
timeout occupies webhook threads only, and e-mail keeps flowing.

Error texts end up in `last_error`, which agents read through ListNotifications: they name the
server and what it answered, never a URL (robot URLs carry their access tokens) or a password.
"""

from __future__ import annotations

import asyncio
import http.client
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.parser import BytesHeaderParser
from urllib.parse import urlsplit

from services.notify.adapters.config_files import Endpoint
from services.notify.adapters.formats import WebhookRequest, robot_error, signed_request
from services.notify.application.ports import Clock, DeliveryFailed, Outgoing

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

    async def send(self, item: Outgoing) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._send, item.payload, item.recipient)

    def _send(self, payload: bytes, recipient: str) -> None:
        sender = envelope_sender(payload)
        where = f"SMTP server {self._host}:{self._port}"
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password)
                smtp.ehlo_or_helo_if_needed()
                # The text parts are UTF-8, possibly 8-bit: say so when the server understands it.
                options = ["BODY=8BITMIME"] if smtp.has_extn("8bitmime") else []
                smtp.sendmail(sender, [recipient], payload, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()), (0, b""))
            raise DeliveryFailed(f"{where} refused the recipient {recipient}: {code} {_text(answer)}") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPException as exc:
            raise DeliveryFailed(f"{where}: {exc}") from None
        except OSError as exc:
            raise DeliveryFailed(f"{where} unreachable: {exc.strerror or exc}") from None

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def envelope_sender(payload: bytes) -> str:
    """The address of the message's From: header (the SMTP envelope sender)."""
    header = BytesHeaderParser(policy=policy.default).parsebytes(payload).get("From")
    addresses = getattr(header, "addresses", ())
    if not addresses:
        raise DeliveryFailed("the stored e-mail has no From: address")
    return str(addresses[0].addr_spec)


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
        status, answer = await loop.run_in_executor(self._executor, self._post, request)
        error = robot_error(endpoint.kind, status, answer)
        if error is not None:
            raise DeliveryFailed(f"webhook '{item.webhook}' ({_host(endpoint.url)}): {error}")

    def _post(self, request: WebhookRequest) -> tuple[int, bytes]:
        http_request = urllib.request.Request(request.url, data=request.body, headers=request.headers, method="POST")
        try:
            with self._opener.open(http_request, timeout=self._timeout) as response:
                return int(response.status), bytes(response.read(MAX_ANSWER_BYTES))
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code), bytes(exc.read(MAX_ANSWER_BYTES))
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
