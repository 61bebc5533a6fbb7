"""Benchmark: the running system, submit → first task → first notice, next to bare SpiffWorkflow.

    .venv/bin/python -m benchmarks.system [--submitters 16] [--seconds 20] [--check]

The system as deployed: NATS JetStream, intake, workflow and notify as separate OS processes
(`python -m services.<name>`), each on a throwaway PostgreSQL database of its own, with the default
bundle (bpmn/) and notify's default configuration (bpmn/notify/) mailing an SMTP server (aiosmtpd)
in this process. This process is the client.

`--submitters` requesters each submit a ticket through intake's `SubmitTicket` (an integration
token, the intake benchmark's ticket) and send the next one once the last has reached both
milestones, timed from the moment the call was sent:

  * task:     workflow's `task.created` for the ticket, seen on the JetStream stream by this
              process's own ordered consumer and timestamped on receipt;
  * notified: the ticket's first e-mail taken by the SMTP server. Under bpmn/notify/rules.toml that
              is the requester's receipt (受理回执, `ticket.classified`), which workflow commits in
              the same transaction as the first task; the task's own notice to its candidate
              groups is in-app only, so no notice leaves the system earlier.

Closed loop on purpose: each submitter waits for its ticket, so the latencies are the system's and
not a backlog's that grows with the run's length, and tickets/s (completed tickets over the wall
time from the first submission to the last milestone) is what the whole chain sustains with that
many tickets on their way. The client, the SMTP server and the five servers share this machine.

In the same run, before the services start, bare SpiffWorkflow (benchmarks.workflow_engine's
`bare`: its engine as shipped, memory only) runs the same diagrams to their first wait state,
for the ratio. There is no speed target: `--check` makes an error the exit status — a submission
refused, or a ticket that did not reach both milestones within `--timeout`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import nats
from aiosmtpd.controller import Controller
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from supportflow.events.v1 import events_pb2
from supportflow.intake.v1 import intake_pb2

from benchmarks.intake_submit import SUBMIT_METHOD, ticket_request
from benchmarks.workflow_engine import bare, percentile
from services.kit.auth import mint_token
from services.kit.events import subject_for
from services.kit.messaging import ensure_stream
from tests.support.nats import NatsServer
from tests.support.postgres import PostgresServer, find_postgres, unique_database_name
from tests.support.processes import ServiceProcess, free_port

#: What the workflow service deploys by default.
BUNDLE = Path(__file__).resolve().parents[1] / "bpmn"
SECRET = "benchmark-secret-0123456789-0123456789-abcdef"
SERVICES = ("intake", "workflow", "notify")
ORG = "acme"
_TICKET_HEADER = re.compile(rb"^X-Supportflow-Ticket:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


class Milestones:
    """When each ticket's first task and first mail were seen (perf_counter), and who waits for them.

    Either may arrive before the submitter knows its ticket number (the call's answer is still on
    its way), so they are kept by number and looked up when the submitter starts waiting."""

    def __init__(self) -> None:
        self.task_at: dict[str, float] = {}
        self.mail_at: dict[str, float] = {}
        self.mails = 0
        self._waiting: dict[str, asyncio.Future[None]] = {}

    def task_created(self, number: str, at: float) -> None:
        self.task_at.setdefault(number, at)
        self._settle(number)

    def mailed(self, number: str, at: float) -> None:
        self.mails += 1
        self.mail_at.setdefault(number, at)
        self._settle(number)

    def reached(self, number: str) -> bool:
        return number in self.task_at and number in self.mail_at

    def _settle(self, number: str) -> None:
        if self.reached(number) and (waiter := self._waiting.pop(number, None)) and not waiter.done():
            waiter.set_result(None)

    async def wait(self, number: str, within: float) -> bool:
        """True once both milestones of `number` are in; False after `within` seconds."""
        if self.reached(number):
            return True
        waiter = self._waiting[number] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(waiter, within)
        except TimeoutError:
            self._waiting.pop(number, None)
            return False
        return True


class _StampingHandler:
    """aiosmtpd handler taking every message, stamping it on arrival (in the server's thread) and
    passing the ticket number to the benchmark's loop; the message itself is not kept."""

    def __init__(self, milestones: Milestones, loop: asyncio.AbstractEventLoop) -> None:
        self.milestones = milestones
        self.loop = loop

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.perf_counter()
        if found := _TICKET_HEADER.search(envelope.original_content or b""):
            self.loop.call_soon_threadsafe(self.milestones.mailed, found.group(1).decode(), at)
        return "250 Message accepted for delivery"


@contextmanager
def mail_server(milestones: Milestones, loop: asyncio.AbstractEventLoop) -> Iterator[int]:
    """An SMTP server on a free port of 127.0.0.1 for notify, in a thread of this process."""
    port = free_port()
    controller = Controller(_StampingHandler(milestones, loop), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@dataclass
class Tally:
    submit_ms: list[float] = field(default_factory=list)
    to_task_ms: list[float] = field(default_factory=list)
    to_mail_ms: list[float] = field(default_factory=list)
    completed: int = 0
    refused: list[str] = field(default_factory=list)
    #: Ticket number → the milestones it had not reached when its time was up.
    lost: dict[str, list[str]] = field(default_factory=dict)
    first_sent: float = float("inf")
    last_reached: float = 0.0


@dataclass(frozen=True)
class Submission:
    """What every submitter shares: intake's SubmitTicket, the token, the milestones, the timeout."""

    call: Any  # grpc.aio.UnaryUnaryMultiCallable: bytes in, SubmitTicketResponse out
    metadata: tuple[tuple[str, str], ...]
    milestones: Milestones
    within: float


async def one_ticket(s: Submission, tally: Tally) -> None:
    """Submit a ticket and wait for its task and its mail."""
    sent = time.perf_counter()
    tally.first_sent = min(tally.first_sent, sent)
    try:
        answer: intake_pb2.SubmitTicketResponse = await s.call(
            ticket_request(str(uuid.uuid4())), metadata=s.metadata, timeout=s.within
        )
    except grpc.aio.AioRpcError as exc:
        tally.refused.append(f"{exc.code().name}: {exc.details()}")
        await asyncio.sleep(0.1)  # a service that refuses would otherwise be hammered in a tight loop
        return
    tally.submit_ms.append((time.perf_counter() - sent) * 1000)
    number = answer.ticket.ticket_number
    if not await s.milestones.wait(number, s.within):
        seen = {"task": s.milestones.task_at, "notified": s.milestones.mail_at}
        tally.lost[number] = [name for name, at in seen.items() if number not in at]
        return
    task_at, mail_at = s.milestones.task_at[number], s.milestones.mail_at[number]
    tally.to_task_ms.append((task_at - sent) * 1000)
    tally.to_mail_ms.append((mail_at - sent) * 1000)
    tally.completed += 1
    tally.last_reached = max(tally.last_reached, task_at, mail_at)


async def submitter(s: Submission, tally: Tally, until: float) -> None:
    """One requester: a ticket after the other until `until`."""
    while time.perf_counter() < until:
        await one_ticket(s, tally)


async def drive(intake: str, nats_url: str, milestones: Milestones, args: argparse.Namespace) -> tuple[Tally, Tally]:
    """A warm-up (checked, not timed), then `--seconds` of `--submitters` submitters."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_stream(js, "SUPPORTFLOW", 900.0)  # the services' settings; a no-op once they made it

    async def on_task(msg: Msg) -> None:
        at = time.perf_counter()
        milestones.task_created(events_pb2.Event.FromString(msg.data).ticket_number, at)

    # Its own ordered consumer (ephemeral, no acks): nothing of it stays, no service's durable
    # consumer is touched.
    subscription = await js.subscribe(
        subject_for(ORG, "task.created"), cb=on_task, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
    )
    token = mint_token(secret=SECRET, subject="portal-gateway", org=ORG, roles=("integration",))
    channel = grpc.aio.insecure_channel(intake)
    call = channel.unary_unary(
        SUBMIT_METHOD, request_serializer=bytes, response_deserializer=intake_pb2.SubmitTicketResponse.FromString
    )
    s = Submission(call, (("authorization", f"Bearer {token}"),), milestones, args.timeout)
    try:
        warm = Tally()
        # One ticket alone first: workflow deploys the bundle on it; then every submitter's
        # connections, pools and caches.
        await one_ticket(s, warm)
        warm_until = time.perf_counter() + args.warm_up
        await asyncio.gather(*(submitter(s, warm, warm_until) for _ in range(args.submitters)))
        print(
            f"  warm-up: {warm.completed} tickets; {args.submitters} submitters for {args.seconds:.0f}s …",
            file=sys.stderr,
            flush=True,
        )
        measured = Tally()
        until = time.perf_counter() + args.seconds
        await asyncio.gather(*(submitter(s, measured, until) for _ in range(args.submitters)))
    finally:
        await subscription.unsubscribe()
        await channel.close()
        await nc.close()
    return warm, measured


def _all(action: Any, processes: list[ServiceProcess]) -> None:
    with ThreadPoolExecutor(len(processes) or 1) as pool:  # all at once: each start waits for SERVING
        list(pool.map(action, processes))


@contextmanager
def running_system(
    server: PostgresServer, nats_url: str, smtp_port: int, workdir: Path
) -> Iterator[dict[str, ServiceProcess]]:
    """The three services as OS processes on a fresh PostgreSQL database each."""
    with ExitStack() as stack:
        processes: dict[str, ServiceProcess] = {}
        for name in SERVICES:
            database = unique_database_name(f"sf_bench_{name}_")
            url = server.create_database(database)
            stack.callback(server.drop_database, database)
            port = free_port()
            env = {
                "SUPPORTFLOW_ENVIRONMENT": "test",
                "SUPPORTFLOW_DATABASE_URL": url,
                "SUPPORTFLOW_NATS_URL": nats_url,
                "SUPPORTFLOW_JWT_SECRET": SECRET,
                "SUPPORTFLOW_GRPC_HOST": "127.0.0.1",
                "SUPPORTFLOW_GRPC_PORT": str(port),
                "SUPPORTFLOW_LOG_LEVEL": "WARNING",
            }
            if name == "notify":  # the default configuration (bpmn/notify/), mailing our server
                env |= {"SUPPORTFLOW_SMTP_HOST": "127.0.0.1", "SUPPORTFLOW_SMTP_PORT": str(smtp_port)}
            processes[name] = ServiceProcess(name, f"services.{name}", env, port, workdir / f"{name}.log")
        # Registered before they start, so that a failed start stops the others too.
        stack.callback(_all, ServiceProcess.terminate, list(processes.values()))
        _all(lambda p: p.start(timeout=60), list(processes.values()))
        yield processes


def _ms(values: list[float]) -> str:
    return f"{percentile(values, 0.5):8.1f} {percentile(values, 0.99):8.1f}"


@dataclass(frozen=True)
class Outcome:
    bare_rate: float
    warm: Tally
    measured: Tally
    #: Every mail the SMTP server took, warm-up included: one receipt per ticket.
    mails: int


def report(outcome: Outcome, args: argparse.Namespace) -> bool:
    warm, tally = outcome.warm, outcome.measured
    wall = tally.last_reached - tally.first_sent
    rate = tally.completed / wall if tally.completed else 0.0
    submitted = len(tally.submit_ms)
    print(
        f"\n{args.submitters} submitters for {args.seconds:g}s, each sending its next ticket once the last one "
        "had its task and its mail"
    )
    print(
        "notified = the ticket's first e-mail at the SMTP server: the requester's receipt (ticket.classified);\n"
        "           the first task's notice to its candidate groups is in-app only (bpmn/notify/rules.toml)\n"
    )
    print(f"{'':48} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'SubmitTicket answered':48} {_ms(tally.submit_ms)}")
    print(f"{'submit → task.created on the stream':48} {_ms(tally.to_task_ms)}")
    print(f"{'submit → notified (mail at the SMTP server)':48} {_ms(tally.to_mail_ms)}")
    print()
    rows = [
        (
            "system, submit → task and notified",
            f"{rate:8.1f} tickets/s",
            f"{tally.completed} in {wall:.1f}s" if tally.completed else "none completed",
        ),
        ("bare SpiffWorkflow (same diagrams, memory only)", f"{outcome.bare_rate:8.0f} instances/s", ""),
        ("system / bare", f"{rate / outcome.bare_rate:8.1%}", ""),
    ]
    for label, value, note in rows:
        print(f"{label:48} {value:20} {note}".rstrip())
    refused, lost = warm.refused + tally.refused, warm.lost | tally.lost
    print(
        f"\nsubmitted {submitted}, completed {tally.completed}, refused {len(tally.refused)}, "
        f"lost {len(tally.lost)} (warm-up: {len(warm.submit_ms)} submitted, {len(warm.refused)} refused, "
        f"{len(warm.lost)} lost); mails taken {outcome.mails} for {len(warm.submit_ms) + submitted} tickets"
    )
    for reason in sorted(set(refused))[:5]:
        print(f"  refused: {reason}")
    for number, missing in sorted(lost.items())[:20]:
        print(f"  lost: {number} without {' and '.join(missing)} after {args.timeout:g}s")
    if len(lost) > 20:
        print(f"  … and {len(lost) - 20} more")
    ok = not refused and not lost and tally.completed == submitted > 0
    print(f"\nevery ticket submitted, with its task and its mail within {args.timeout:g}s: {'yes' if ok else 'NO'}")
    return ok


async def _drive_system(
    args: argparse.Namespace, server: PostgresServer, nats_url: str, workdir: Path
) -> tuple[Tally, Tally, int]:
    milestones = Milestones()
    with mail_server(milestones, asyncio.get_running_loop()) as smtp_port, ExitStack() as stack:
        print("starting intake, workflow, notify …", file=sys.stderr, flush=True)
        # Started and stopped in a thread: the mail server hands its messages to this loop, which
        # keeps running meanwhile.
        system = running_system(server, nats_url, smtp_port, workdir)
        processes = await asyncio.to_thread(stack.enter_context, system)
        try:
            warm, measured = await drive(processes["intake"].address, nats_url, milestones, args)
            if warm.refused or warm.lost or measured.refused or measured.lost:
                for name, process in processes.items():  # their logs go with the temporary directory
                    print(f"----- {name}: last lines of its log -----\n{process.log_tail(20)}", file=sys.stderr)
            return warm, measured, milestones.mails
        finally:
            await asyncio.to_thread(stack.close)


def run(args: argparse.Namespace, server: PostgresServer, nats_url: str, workdir: Path) -> Outcome:
    """Bare SpiffWorkflow first, alone on the machine's cores; then the system."""
    bare_rate = bare(BUNDLE, args.bare_instances)
    print(f"  bare SpiffWorkflow: {bare_rate:.0f} instances/s", file=sys.stderr, flush=True)
    warm, measured, mails = asyncio.run(_drive_system(args, server, nats_url, workdir))
    return Outcome(bare_rate, warm, measured, mails)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submitters", type=int, default=16, help="tickets on their way at once (default 16)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to submit (default 20)")
    parser.add_argument("--warm-up", type=float, default=3.0, help="seconds of untimed submissions first (default 3)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a ticket may take to both milestones (default 30)"
    )
    parser.add_argument("--bare-instances", type=int, default=200, help="instances for the bare engine (default 200)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a ticket was refused or lost")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sf-bench-sys-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        nats_server = NatsServer(workdir / "nats")
        nats_server.start()
        stack.callback(nats_server.stop)
        outcome = run(args, find_postgres(workdir), nats_server.url, workdir)
    ok = report(outcome, args)
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
