"""Between notify's records and its protobuf messages (notify.proto)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp
from supportflow.notify.v1 import notify_pb2 as pb

from services.kit.errors import FieldViolation
from services.notify.application.ports import Notification
from services.notify.domain.delivery import Status
from services.notify.domain.errors import InvalidRequest
from services.notify.domain.rules import Channel

CHANNEL_PB: Final[dict[Channel, pb.Channel.ValueType]] = {
    "email": pb.CHANNEL_EMAIL,
    "webhook": pb.CHANNEL_WEBHOOK,
    "in_app": pb.CHANNEL_IN_APP,
}
CHANNEL_FROM_PB: Final = {v: k for k, v in CHANNEL_PB.items()}
STATUS_PB: Final[dict[Status, pb.DeliveryStatus.ValueType]] = {
    Status.PENDING: pb.DELIVERY_STATUS_PENDING,
    Status.SENT: pb.DELIVERY_STATUS_SENT,
    Status.RETRYING: pb.DELIVERY_STATUS_RETRYING,
    Status.DEAD: pb.DELIVERY_STATUS_DEAD,
}
STATUS_FROM_PB: Final = {v: k for k, v in STATUS_PB.items()}


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def notification_pb(n: Notification) -> pb.Notification:
    return pb.Notification(
        notification_id=n.notification_id,
        organization=n.organization,
        ticket_number=n.ticket_number,
        event_id=n.event_id,
        event_type=n.event_type,
        recipient=n.recipient,
        channel=CHANNEL_PB[n.channel],
        template=n.template,
        locale=n.locale,
        subject=n.subject,
        body=n.body,
        status=STATUS_PB[n.status],
        attempts=n.attempts,
        next_attempt_at=_ts(n.next_attempt_at),
        last_error=n.last_error,
        created_at=_ts(n.created_at),
        sent_at=_ts(n.sent_at),
        attempt_log=[pb.DeliveryAttempt(at=_ts(a.at), succeeded=a.succeeded, error=a.error) for a in n.attempt_log],
    )


def channel_from_pb(value: pb.Channel.ValueType) -> Channel | None:
    if value == pb.CHANNEL_UNSPECIFIED:
        return None
    if value not in CHANNEL_FROM_PB:
        raise InvalidRequest([FieldViolation("channel", f"unknown channel {value}")])
    return CHANNEL_FROM_PB[value]


def statuses_from_pb(values: list[pb.DeliveryStatus.ValueType]) -> tuple[Status, ...]:
    out = []
    for i, value in enumerate(values):
        if value not in STATUS_FROM_PB:
            raise InvalidRequest([FieldViolation(f"statuses[{i}]", f"unknown delivery status {value}")])
        out.append(STATUS_FROM_PB[value])
    return tuple(out)


def encode_page_token(created_at: datetime, notification_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), notification_id]).encode()).decode()


def decode_page_token(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        created, last_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(created), str(last_id)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequest([FieldViolation("page_token", "is not a token this service issued")]) from None
