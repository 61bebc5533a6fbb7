"""An operator finds the notifications that gave up and sends them again from the command line:
`supportflow notices` lists every dead one of the organisation with why, `supportflow notices
retry --all-dead` (or by id) queues them once the cause is fixed."""

from __future__ import annotations

import argparse
import asyncio

import pytest
from nats.aio.client import Client
from supportflow.common.v1 import types_pb2
from supportflow.notify.v1 import notify_pb2 as pb
from supportflow.notify.v1 import notify_pb2_grpc

from services.notices_cli import run
from services.notify.bootstrap import Notify
from tests.notify.conftest import MovableClock, token
from tests.notify.sinks import HttpSink
from tests.notify.stream_side import Ticket, publish, ticket_number, until
from tests.notify.test_webhooks import OPERATIONS, REFUSED, ROBOT, robot_notice
from tests.support.processes import free_port


def args(notify: Notify, action: str = "list", *ids: str, all_dead: bool = False) -> argparse.Namespace:
    return argparse.Namespace(
        action=action,
        ids=list(ids),
        all_dead=all_dead,
        status="dead",
        org="acme",
        address=f"127.0.0.1:{notify.host.port}",
        token=token("lead-1", roles=("team_lead",)),
    )


async def test_dead_notices_are_listed_with_why_and_sent_again_once_fixed(
    notify: Notify,
    stub: notify_pb2_grpc.NotifyServiceStub,
    nc: Client,
    http: HttpSink,
    clock: MovableClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    http.always = REFUSED  # the robot's signature settings are wrong
    ticket = Ticket(ticket_number(), clock.now)
    await publish(nc, ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P0, **OPERATIONS))
    await http.wait_for(ROBOT, 1)
    dead = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.status == pb.DELIVERY_STATUS_DEAD)
    assert dead.status == pb.DELIVERY_STATUS_DEAD

    assert await asyncio.to_thread(run, args(notify)) == 0
    out = capsys.readouterr().out
    assert "1 dead notification(s) in acme" in out
    assert f"{dead.notification_id}  {ticket.number}  ticket.classified → webhook" in out
    assert "errcode 310000: sign not match" in out

    http.always = None  # fixed
    assert await asyncio.to_thread(run, args(notify, "retry", all_dead=True)) == 0
    assert f"↻ {dead.notification_id}: queued to be sent again" in capsys.readouterr().out
    sent = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.status == pb.DELIVERY_STATUS_SENT)
    assert [a.succeeded for a in sent.attempt_log] == [False, True]

    assert await asyncio.to_thread(run, args(notify)) == 0
    assert "no dead notification in acme" in capsys.readouterr().out
    # A notice that was sent is not sent again: said so, and the exit status says it.
    assert await asyncio.to_thread(run, args(notify, "retry", sent.notification_id)) == 1
    assert "only dead or retrying ones can be sent again" in capsys.readouterr().err


def test_a_notify_service_that_is_not_running_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = argparse.Namespace(
        action="list", ids=[], all_dead=False, status="dead", org="acme", address=f"127.0.0.1:{free_port()}", token=""
    )
    assert run(nowhere) == 2
    assert "the notify service is not reachable: start it with `./dev up` or pass --address" in capsys.readouterr().err
