"""The running system as the demo's people see it: the public gRPC APIs of intake, workflow and
notify, called with each person's development token; waits that show progress; and errors that
say what to do instead of a stack trace."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

import grpc
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from supportflow.common.v1 import types_pb2
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc
from supportflow.notify.v1 import notify_pb2, notify_pb2_grpc
from supportflow.workflow.v1 import workflow_pb2, workflow_pb2_grpc

from services.demo.cast import LEAD, Person

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
T = TypeVar("T")

#: Longest one call may take; the services answer in milliseconds.
CALL_TIMEOUT: Final = 20.0
#: How often a wait looks again.
POLL_SECONDS: Final = 0.1
START_HINT: Final = (
    "start the system with ./dev up in another terminal (if you gave it --port-offset, give ./dev demo the same), "
    "then run ./dev demo again"
)
OPEN: Final = (workflow_pb2.TASK_STATE_OPEN, workflow_pb2.TASK_STATE_CLAIMED)


class DemoError(Exception):
    """Something the person running the demo has to act on; the message says what."""


class Progress(Protocol):
    """Shows that a wait is going on (see `timeline.Progress`)."""

    def tick(self, what: str, elapsed: float, note: str) -> None: ...

    def done(self) -> None: ...


@dataclass(frozen=True)
class Endpoints:
    intake: str
    workflow: str
    notify: str

    @classmethod
    def local(cls, host: str = "127.0.0.1", offset: int = 0) -> Endpoints:
        """Where `./dev up` (with the same --port-offset) puts the services."""
        return cls(f"{host}:{50051 + offset}", f"{host}:{50052 + offset}", f"{host}:{50053 + offset}")

    def items(self) -> Iterator[tuple[str, str]]:
        yield from (("intake", self.intake), ("workflow", self.workflow), ("notify", self.notify))


class Desk:
    """Calls and waits on behalf of the demo's people. `wait_seconds` bounds every wait for the
    system to react; a service that does not answer is tried again for `unavailable_grace`
    seconds (a restart) before the demo gives up with advice."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        secret: str,
        org: str,
        progress: Progress,
        wait_seconds: float = 60.0,
        unavailable_grace: float = 15.0,
    ) -> None:
        self.endpoints, self.org = endpoints, org
        self._secret, self._progress = secret, progress
        self.wait_seconds, self._grace = wait_seconds, unavailable_grace
        self._channels = {name: grpc.insecure_channel(address) for name, address in endpoints.items()}
        self.intake = intake_pb2_grpc.IntakeServiceStub(self._channels["intake"])
        self.workflow = workflow_pb2_grpc.WorkflowServiceStub(self._channels["workflow"])
        self.notify = notify_pb2_grpc.NotifyServiceStub(self._channels["notify"])
        self._tokens: dict[Person, tuple[tuple[str, str], ...]] = {}

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def __enter__(self) -> Desk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------------------------

    def check_up(self) -> None:
        """Every service answers its health check with SERVING, or a DemoError says what to do."""
        for name, address in self.endpoints.items():
            health = health_pb2_grpc.HealthStub(self._channels[name])
            try:
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=3.0).status
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else None
                if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise DemoError(f"nothing listens on {address} ({name}) — {START_HINT}") from None
                raise DemoError(f"{name} on {address} does not answer health checks ({error}) — {START_HINT}") from None
            if status != health_pb2.HealthCheckResponse.SERVING:
                state = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
                raise DemoError(
                    f"{name} on {address} is up but {state}: it cannot reach its database or NATS — "
                    "look at the output of ./dev up, or stop it (Ctrl-C) and start it again"
                )

    def call(self, service: str, rpc: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req, who: Person) -> Resp:
        """One RPC as `who`. Every mutating request carries a request id, so trying again after a
        restart of the service is safe."""
        deadline = time.monotonic() + self._grace
        try:
            while True:
                try:
                    return rpc(request, metadata=self._metadata(who), timeout=CALL_TIMEOUT)
                except grpc.RpcError as error:
                    if _code(error) != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                        raise self._explain(error, service, type(request).__name__, who) from None
                    self._progress.tick(f"{service} is not answering", 0, "; trying again")
                    time.sleep(0.5)
        finally:
            self._progress.done()

    def refusal(
        self, service: str, rpc: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req, who: Person
    ) -> tuple[grpc.StatusCode, str]:
        """A call that must be refused (a four-eyes rule): its status code and message."""
        try:
            rpc(request, metadata=self._metadata(who), timeout=CALL_TIMEOUT)
        except grpc.RpcError as error:
            if _code(error) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED):
                raise self._explain(error, service, type(request).__name__, who) from None
            return _code(error) or grpc.StatusCode.UNKNOWN, _details(error)
        raise DemoError(f"{service} accepted {type(request).__name__} by {who.label}, which it must refuse")

    def _metadata(self, who: Person) -> tuple[tuple[str, str], ...]:
        if who not in self._tokens:
            self._tokens[who] = who.metadata(self._secret, self.org)
        return self._tokens[who]

    def _explain(self, error: grpc.RpcError, service: str, what: str, who: Person) -> DemoError:
        address = dict(self.endpoints.items())[service]
        code, details = _code(error), _details(error)
        if code == grpc.StatusCode.UNAVAILABLE:
            return DemoError(f"nothing answers on {address} ({service}: {details}) — {START_HINT}")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return DemoError(
                f"{service} refused the demo's development token ({details}): the services run with another "
                "SUPPORTFLOW_JWT_SECRET — export the same value in this terminal and run ./dev demo again"
            )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DemoError(
                f"{service} did not answer {what} within {CALL_TIMEOUT:.0f} s — is the machine overloaded?"
            )
        return DemoError(
            f"{service} refused {what} by {who.label}: {code.name if code else 'error'}: {details}. The demo follows "
            "the default process in bpmn/; if the organisation deployed a changed one, run the demo against a fresh "
            "system (stop ./dev up, start it with another --data-dir)"
        )

    # -- waiting -------------------------------------------------------------------------------

    def wait(self, what: str, probe: Callable[[], T | None], *, service: str, hint: str = "") -> T:
        """`probe()` until it returns something, showing progress; a DemoError after `wait_seconds`."""
        started = time.monotonic()
        try:
            while True:
                note = ""
                try:
                    found = probe()
                except grpc.RpcError as error:
                    if _code(error) not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                        raise self._explain(error, service, what, LEAD) from None
                    found, note = None, f"; {service} is not answering, trying again"
                if found is not None:
                    return found
                elapsed = time.monotonic() - started
                if elapsed > self.wait_seconds:
                    raise DemoError(
                        f"waited {self.wait_seconds:.0f} s for {what}, in vain. {hint or STUCK_HINT}".rstrip()
                    )
                self._progress.tick(what, elapsed, note)
                time.sleep(POLL_SECONDS)
        finally:
            self._progress.done()

    # -- what the desk reads -------------------------------------------------------------------

    def quietly(self, read: Callable[[], T]) -> T | None:
        """`read()`, or None while its service does not answer (it may be restarting)."""
        try:
            return read()
        except grpc.RpcError as error:
            if _code(error) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return None
            raise

    def ticket(self, number: str) -> intake_pb2.Ticket:
        return self.intake.GetTicket(
            intake_pb2.GetTicketRequest(ticket_number=number), metadata=self._metadata(LEAD), timeout=CALL_TIMEOUT
        )

    def instance(self, number: str) -> workflow_pb2.ProcessInstance | None:
        """The ticket's process instance; None while the workflow has not started it."""
        try:
            return self.workflow.GetProcessInstance(
                workflow_pb2.GetProcessInstanceRequest(ticket_number=number),
                metadata=self._metadata(LEAD),
                timeout=CALL_TIMEOUT,
            )
        except grpc.RpcError as error:
            if _code(error) == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    def open_task(self, number: str, element_id: str) -> workflow_pb2.Task | None:
        found = self.workflow.ListTasks(
            workflow_pb2.ListTasksRequest(ticket_number=number, states=OPEN),
            metadata=self._metadata(LEAD),
            timeout=CALL_TIMEOUT,
        )
        return next((t for t in found.tasks if t.element_id == element_id), None)

    def notifications(self, number: str) -> list[notify_pb2.Notification]:
        """Every notification of the ticket, oldest first."""
        found: list[notify_pb2.Notification] = []
        token = ""
        while True:
            page = self.notify.ListNotifications(
                notify_pb2.ListNotificationsRequest(
                    organization=self.org, ticket_number=number, page_size=200, page_token=token
                ),
                metadata=self._metadata(LEAD),
                timeout=CALL_TIMEOUT,
            )
            found.extend(page.notifications)
            token = page.next_page_token
            if not token:
                return sorted(found, key=lambda n: (n.created_at.ToNanoseconds(), n.notification_id))

    # -- waits the story uses ------------------------------------------------------------------

    def task(self, number: str, element_id: str) -> workflow_pb2.Task:
        return self.wait(
            f"the workflow to open task {element_id}",
            lambda: self.open_task(number, element_id),
            service="workflow",
        )

    def status(self, number: str, status: types_pb2.TicketStatus.ValueType) -> intake_pb2.Ticket:
        name = types_pb2.TicketStatus.Name(status).removeprefix("TICKET_STATUS_")

        def probe() -> intake_pb2.Ticket | None:
            ticket = self.ticket(number)
            return ticket if ticket.status == status else None

        return self.wait(f"intake to show the ticket as {name}", probe, service="intake")

    def until_instance(
        self, number: str, what: str, done: Callable[[workflow_pb2.ProcessInstance], bool]
    ) -> workflow_pb2.ProcessInstance:
        def probe() -> workflow_pb2.ProcessInstance | None:
            found = self.instance(number)
            return found if found is not None and done(found) else None

        return self.wait(what, probe, service="workflow")


STUCK_HINT: Final = (
    "Are intake, workflow and notify of ./dev up all still running (its terminal shows their errors)? "
    "A ticket moves only while all three reach the same NATS server."
)


def form(**values: Any) -> Struct:
    """Form variables for CompleteTask."""
    out = Struct()
    out.update(values)
    return out


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.Call) else None


def _details(error: grpc.RpcError) -> str:
    text = (error.details() if isinstance(error, grpc.Call) else None) or str(error)
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    details: list[Any] = list(status.details) if status is not None else []
    for detail in details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            text += "".join(f"; {v.field}: {v.description}" for v in bad.field_violations)
    return text
