"""A `ticket.submitted` event as intake publishes it, with a fresh ticket number each time: what the
kit's consumer tests feed their consumers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2

from services.kit.events import new_event


def submitted(title: str = "VPN drops") -> events_pb2.Event:
    return new_event(
        payload=events_pb2.TicketSubmitted(title=title, requester=types_pb2.Requester(id="E1001")),
        org="acme",
        ticket_number=f"TS20260302{uuid.uuid4().int % 10**6:06d}",
        producer="intake",
        actor_subject="E1001",
        actor_role="requester",
        occurred_at=datetime.now(UTC),
    )
