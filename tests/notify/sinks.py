"""The far ends of notify's channels, real servers in this process: an SMTP server (aiosmtpd) that
keeps what it receives — or refuses it, or is slow to confirm it, as told —, a host that greets
with 5xx, and an HTTP server for webhooks that can be told to fail (with a Retry-After, too),
answer like a DingTalk robot refusing a message, or hang until released."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.processes import free_port

DEADLINE = 10.0


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class _SmtpHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sink.sessions += 1  # one EHLO per connection (this server offers no STARTTLS)
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any) -> str:
        if self.sink.replies["MAIL"]:
            return self.sink.replies["MAIL"].popleft()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if self.sink.refuse_next > 0:
            self.sink.refuse_next -= 1
            return "450 4.2.0 mailbox busy, try again later"
        if self.sink.replies["RCPT"]:
            return self.sink.replies["RCPT"].popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.replies["DATA"]:
            return self.sink.replies["DATA"].popleft()
        # Taken, as a real server queues a message once it has the final ".": a client that goes
        # away before the 250 below does not know that (the duplicate window of RFC 1047).
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.original_content))
        self.sink.received.append(received)
        if self.sink.hold_reply_seconds:
            self.sink.holding += 1
            try:
                await asyncio.sleep(self.sink.hold_reply_seconds)  # cancelled when the client disconnects
            finally:
                self.sink.holding -= 1
        self.sink.acknowledged.append(received)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on a free port of 127.0.0.1 that keeps every message it accepts.

    `replies["MAIL" | "RCPT" | "DATA"]`: answers to give instead of accepting, one per command
    (e.g. "550 5.1.1 no such user"). `hold_reply_seconds`: how long to wait, with the message
    taken, before answering 250 (`holding` counts the messages waiting; `acknowledged` lists those
    whose 250 was sent). `credentials`: the (user, password) AUTH accepts. `sessions` counts the
    connections that said EHLO. Stopped and started again, it keeps its port and what it received.
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.received: list[Received] = []
        self.acknowledged: list[Received] = []
        self.refuse_next = 0
        self.replies: dict[str, deque[str]] = {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
        self.hold_reply_seconds = 0.0
        self.holding = 0
        self.sessions = 0
        self.port = free_port()
        auth: dict[str, Any] = {}
        if credentials is not None:

            def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                given = (_text(data.login), _text(data.password)) if isinstance(data, LoginPassword) else None
                return AuthResult(success=given == credentials, handled=False)

            auth = {"authenticator": authenticator, "auth_require_tls": False}
        self._auth = auth
        self._controller: Controller | None = None

    def start(self) -> None:
        # A controller's loop ends with it: each start runs a new one on the same port.
        self._controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port, **self._auth)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def for_ticket(self, number: str) -> list[EmailMessage]:
        return [m for m in (r.message for r in list(self.received)) if m["X-Supportflow-Ticket"] == number]

    async def wait_for(self, number: str, count: int, within: float = DEADLINE) -> list[EmailMessage]:
        deadline = time.monotonic() + within
        while True:
            found = self.for_ticket(number)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.02)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class GreetingRefusingServer:
    """A server that answers every connection with a 5xx greeting and hangs up, as a host with no
    mail service does ("554 no SMTP service here", RFC 5321 §3.1)."""

    def __init__(self, greeting: str = "554 5.3.2 no SMTP service here") -> None:
        self.greeting = greeting.encode() + b"\r\n"
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name="smtp-refuser", daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            with conn:
                self.connections += 1
                conn.sendall(self.greeting)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        self._server.close()


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


OK_ANSWER = (200, b'{"errcode":0,"errmsg":"ok"}')
#: (status, body) or (status, body, extra headers such as Retry-After).
Answer = tuple[int, bytes] | tuple[int, bytes, dict[str, str]]


class HttpSink:
    """An HTTP server on a free port of 127.0.0.1. Answers each POST with the next scripted
    answer, else `always`, else 200 and a robot's "ok"; while `gate` is cleared, requests wait for it."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: deque[Answer] = deque()
        self.always: Answer | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                parts = urlsplit(self.path)
                sink.requests.append(Request(parts.path, parse_qs(parts.query), dict(self.headers.items()), body))
                sink.waiting += 1
                sink.gate.wait(timeout=30)
                sink.waiting -= 1
                status, answer, *extra = sink.script.popleft() if sink.script else (sink.always or OK_ANSWER)
                try:
                    self.send_response(status)
                    for name, value in (extra[0] if extra else {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up waiting (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-sink", daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()

    def to(self, path: str) -> list[Request]:
        return [r for r in list(self.requests) if r.path == path]

    async def wait_for(self, path: str, count: int, within: float = DEADLINE) -> list[Request]:
        deadline = time.monotonic() + within
        while True:
            found = self.to(path)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.02)
