"""`supportflow.events.v1.Event` → `TicketEvent`, following the payload convention in
services/notify/domain/event.py: every payload field present under its proto name, timestamps as
aware UTC datetimes, Priority as "P0"…"P3", Rating as "satisfied"…, nested messages as dicts.
The consumer decodes each event with it; the tests build their events through it too."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from supportflow.events.v1 import events_pb2

from services.kit.events import EVENT_TYPES
from services.notify.domain.event import TicketEvent

_ENUM_PREFIXES = {"supportflow.common.v1.Priority": "PRIORITY_", "supportflow.common.v1.Rating": "RATING_"}


def decode(event: events_pb2.Event) -> TicketEvent:
    field = EVENT_TYPES.get(event.type, "")
    payload = _message(getattr(event, field)) if field and event.WhichOneof("payload") == field else {}
    return TicketEvent(
        event_id=event.event_id,
        type=event.type,
        occurred_at=event.occurred_at.ToDatetime(tzinfo=UTC),
        organization=event.organization,
        ticket_number=event.ticket_number,
        actor_subject=event.actor.subject,
        actor_role=event.actor.role,
        payload=payload,
    )


def _message(message: Message) -> dict[str, Any]:
    return {f.name: _field(message, f) for f in message.DESCRIPTOR.fields}


def _field(message: Message, f: Any) -> Any:
    value = getattr(message, f.name)
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        return {k: _scalar_or_message(v, f.message_type.fields_by_name["value"]) for k, v in value.items()}
    if f.is_repeated:
        return [_scalar_or_message(v, f) for v in value]
    if f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.full_name == "google.protobuf.Timestamp":
        return value.ToDatetime(tzinfo=UTC) if message.HasField(f.name) else None
    return _scalar_or_message(value, f)


def _scalar_or_message(value: Any, f: Any) -> Any:
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        name = f.message_type.full_name
        if name == "google.protobuf.Struct":
            return MessageToDict(value)
        if name == "google.protobuf.Timestamp":
            return value.ToDatetime(tzinfo=UTC)
        return _message(value)
    if f.type == FieldDescriptor.TYPE_ENUM:
        enum = f.enum_type
        label = enum.values_by_number[value].name
        prefix = _ENUM_PREFIXES.get(enum.full_name, "")
        code = label.removeprefix(prefix)
        if code == "UNSPECIFIED":
            return ""
        return code if enum.full_name.endswith("Priority") else code.lower()
    return value
