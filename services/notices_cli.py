"""`supportflow notices` lists the organisation's notifications that gave up (dead), each with why;
`supportflow notices retry ID … | --all-dead` sends them again once the cause is fixed (a webhook's
URL or secret, a mailbox). `--status retrying` lists those still being retried instead. A gRPC
client of the running notify service (ListNotifications, RetryNotification): it needs only the
contracts in proto/, like any upstream system."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc
from supportflow.notify.v1 import notify_pb2, notify_pb2_grpc

from services.cli_client import Metadata, bearer, report_error

STATUSES = {
    "dead": notify_pb2.DELIVERY_STATUS_DEAD,
    "retrying": notify_pb2.DELIVERY_STATUS_RETRYING,
    "pending": notify_pb2.DELIVERY_STATUS_PENDING,
}


def run(ns: argparse.Namespace) -> int:
    metadata = bearer(ns.token, org=ns.org, subject="team-lead", roles=["team_lead"])
    with grpc.insecure_channel(ns.address) as channel:
        stub = notify_pb2_grpc.NotifyServiceStub(channel)
        try:
            if ns.action == "retry":
                return _retry(stub, metadata, ns)
            return _list(stub, metadata, ns.org, ns.status)
        except grpc.RpcError as error:
            return report_error(error, "the request", "notify")


def _notices(stub: notify_pb2_grpc.NotifyServiceStub, metadata: Metadata, org: str, status: str) -> list[Any]:
    request = notify_pb2.ListNotificationsRequest(organization=org, statuses=[STATUSES[status]], page_size=200)
    found: list[Any] = []
    while True:
        page = stub.ListNotifications(request, metadata=metadata, timeout=30)
        found.extend(page.notifications)
        if not page.next_page_token:
            return found
        request.page_token = page.next_page_token


def _list(stub: notify_pb2_grpc.NotifyServiceStub, metadata: Metadata, org: str, status: str) -> int:
    found = _notices(stub, metadata, org, status)
    if not found:
        print(f"✔ no {status} notification in {org}")
        return 0
    print(f"{len(found)} {status} notification(s) in {org}, newest first:")
    for n in found:
        channel = notify_pb2.Channel.Name(n.channel).removeprefix("CHANNEL_").lower()
        print(f"\n{n.notification_id}  {n.ticket_number}  {n.event_type} → {channel} {n.recipient}")
        print(f"  {n.attempts} attempt(s); last error: {n.last_error or '(none)'}")
    if status == "dead":
        print("\nonce the cause is fixed: supportflow notices retry ID … (or --all-dead)")
    return 0


def _retry(stub: notify_pb2_grpc.NotifyServiceStub, metadata: Metadata, ns: argparse.Namespace) -> int:
    ids = list(ns.ids) or [n.notification_id for n in _notices(stub, metadata, ns.org, "dead")]
    if not ids:
        print(f"✔ no dead notification in {ns.org}")
        return 0
    failed = 0
    for notification_id in ids:
        try:
            stub.RetryNotification(
                notify_pb2.RetryNotificationRequest(notification_id=notification_id), metadata=metadata, timeout=30
            )
        except grpc.RpcError as error:
            failed += 1
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            print(f"✘ {notification_id}: {details}", file=sys.stderr)
            continue
        print(f"↻ {notification_id}: queued to be sent again")
    return 1 if failed else 0
