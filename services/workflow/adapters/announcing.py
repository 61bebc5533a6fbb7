"""Announcements (application values) → `supportflow.events.v1` envelopes, for the outbox.

A thrown message the contract does not know becomes no event (the deploy validator rejects such
diagrams; one that slipped through must not break the transaction): it is logged instead.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from supportflow.events.v1 import events_pb2

from services.workflow.adapters import event_codec as codec
from services.workflow.application import announcements as an

log = logging.getLogger(__name__)


def encode_envelope(envelope: an.Envelope) -> list[events_pb2.Event]:
    org, ticket, at = envelope.organization, envelope.ticket_number, envelope.at
    actor = (envelope.actor_subject, envelope.actor_role)
    out: list[events_pb2.Event] = []
    for said in envelope.announcements:
        match said:
            case an.Thrown(event=thrown, matched_rules=rules):
                try:
                    out.append(
                        codec.encode_thrown(
                            thrown, org=org, ticket_number=ticket, occurred_at=at, actor=actor, matched_rules=rules
                        )
                    )
                except codec.UnknownEventType as exc:
                    log.warning("ticket %s: %s", ticket, exc)
            case an.TaskCreated(task=task):
                out.append(
                    codec.task_created(
                        task,
                        org=org,
                        ticket_number=ticket,
                        occurred_at=at,
                        actor=actor,
                        due_at=task.due_at,
                        priority=task.priority,
                    )
                )
            case an.TaskClaimed(task=task):
                out.append(
                    codec.task_claimed(
                        task.task_id,
                        task.element_id,
                        task.name,
                        task.assignee,
                        org=org,
                        ticket_number=ticket,
                        occurred_at=at,
                        actor=actor,
                    )
                )
            case an.TaskCompleted(task=task):
                out.append(
                    codec.task_completed(
                        task.task_id,
                        task.element_id,
                        task.name,
                        task.completed_by or "",
                        task.result or {},
                        org=org,
                        ticket_number=ticket,
                        occurred_at=at,
                        actor=actor,
                    )
                )
            case an.TicketAssigned(assignment=assignment):
                out.append(
                    codec.ticket_assigned(
                        assignment.team,
                        assignment.assignee,
                        co_handlers=assignment.co_handlers,
                        org=org,
                        ticket_number=ticket,
                        occurred_at=at,
                        actor=actor,
                    )
                )
            case an.SlaWarning(clock=clock, remaining_seconds=seconds):
                out.append(
                    codec.sla_warning(
                        clock.name,
                        clock.due_at,
                        timedelta(seconds=seconds),
                        org=org,
                        ticket_number=ticket,
                        occurred_at=at,
                        actor=actor,
                    )
                )
            case an.SlaBreached(clock=clock, at=breached_at):
                out.append(
                    codec.sla_breached(
                        clock.name,
                        clock.due_at,
                        breached_at=breached_at,
                        org=org,
                        ticket_number=ticket,
                        occurred_at=at,
                        actor=actor,
                    )
                )
    return out
