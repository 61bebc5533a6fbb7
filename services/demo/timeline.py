"""What the demo prints: a timeline of one ticket — when, who, what, and the SLA clocks with their
due times — and, at the end, the notifications sent. Plus the progress line shown while waiting."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, TextIO
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp
from supportflow.common.v1 import types_pb2
from supportflow.intake.v1 import intake_pb2
from supportflow.notify.v1 import notify_pb2
from supportflow.workflow.v1 import workflow_pb2

from services.demo.cast import CAST, Person

WHO_WIDTH: Final = 24
INDENT: Final = " " * (10 + WHO_WIDTH)

#: How the workflow's thrown events read in the timeline (bpmn/README.md, "Events out").
EVENT_WORDS: Final = {
    "ticket.classified": "classified and routed",
    "ticket.reclassified": "priority corrected",
    "ticket.info_requested": "asks the requester for the missing information (SOP §2, within 1 h)",
    "ticket.assigned": "main handler named",
    "ticket.escalated": "escalated to tier 2 (SOP §6: tier 2 responds within 1 h)",
    "ticket.progress_due": "progress report due",
    "change.approval_requested": "change approval requested (SOP §7)",
    "change.decided": "change decision recorded",
    "review.requested": "dual review requested (SOP §8)",
    "review.decided": "review decision recorded",
    "ticket.resolved": "result notice: resolved, the requester is asked to verify (SOP §9)",
    "ticket.survey_requested": "satisfaction survey sent",
    "ticket.revisit_required": "dissatisfied: a revisit is due (SOP §5, within 12 working hours)",
    "ticket.closed": "closed and archived",
}
#: History entries that mirror what the demo's people did (printed when they do it) or only trace
#: the engine's path.
QUIET: Final = frozenset({"path", "task.claimed", "task.completed", "message"})
CLOCK_STATES: Final = {
    workflow_pb2.SLA_CLOCK_STATE_RUNNING: "running",
    workflow_pb2.SLA_CLOCK_STATE_PAUSED: "paused",
    workflow_pb2.SLA_CLOCK_STATE_MET: "met",
    workflow_pb2.SLA_CLOCK_STATE_BREACHED: "BREACHED",
    workflow_pb2.SLA_CLOCK_STATE_CANCELLED: "cancelled",
}
CHANNELS: Final = {
    notify_pb2.CHANNEL_EMAIL: "e-mail",
    notify_pb2.CHANNEL_WEBHOOK: "webhook",
    notify_pb2.CHANNEL_IN_APP: "in-app",
}


class Progress:
    """A line that says what the demo waits for and for how long: rewritten in place on a terminal,
    otherwise printed after a few seconds and then now and then (logs stay short)."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._tty = stream is not None and stream.isatty()
        self._shown = False
        self._next_note = 3.0

    def tick(self, what: str, elapsed: float, note: str) -> None:
        if self._stream is None:
            return
        line = f"  … waiting for {what} ({elapsed:.0f} s){note}"
        if self._tty:
            self._stream.write("\r" + line[:160].ljust(100))
            self._shown = True
        elif elapsed >= self._next_note or note:
            self._stream.write(line + "\n")
            self._next_note = elapsed + 15.0
        self._stream.flush()

    def done(self) -> None:
        if self._stream is not None and self._shown:
            self._stream.write("\r" + " " * 100 + "\r")
            self._stream.flush()
        self._shown = False
        self._next_note = 3.0


@dataclass
class Seen:
    """What of one ticket has been printed already."""

    history: int = 0
    clocks: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    status: int = types_pb2.TICKET_STATUS_UNSPECIFIED


def recorded_actor(actor: types_pb2.Actor) -> Person | str:
    """Who the workflow's history names for a step: a person of the cast, someone else by their
    subject, "workflow" for what it did on its own (actor `system`)."""
    if (person := _CAST_BY_SUBJECT.get(actor.subject)) is not None:
        return person
    return "workflow" if actor.subject in ("", "system") else actor.subject


_CAST_BY_SUBJECT = {p.subject: p for p in CAST}


class Timeline:
    def __init__(self, out: TextIO, time_zone: str) -> None:
        self.out = out
        self.zone = ZoneInfo(time_zone)
        self._seen: dict[str, Seen] = {}
        self._started = time.monotonic()

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def heading(self, number: int, title: str) -> None:
        self.line(f"\n── {number}. {title} " + "─" * max(3, 90 - width(title)))

    def act(self, at: datetime | Timestamp | None, who: Person | str, what: str, *more: str) -> None:
        """Something a person did (or the workflow did on its own, `who` = "workflow")."""
        name = who.label if isinstance(who, Person) else who
        self.line(f"{self.clock(at)}  {pad(name, WHO_WIDTH)}{what}")
        for extra in more:
            self.note(extra)

    def note(self, text: str) -> None:
        self.line(f"{INDENT}{text}")

    # -- the system's side ---------------------------------------------------------------------

    def catch_up(
        self, number: str, instance: workflow_pb2.ProcessInstance | None, ticket: intake_pb2.Ticket | None
    ) -> None:
        """Print what the workflow did since the last call (its history), clocks that started or
        changed state, and the ticket's new status in intake."""
        seen = self._seen.setdefault(number, Seen())
        if instance is not None:
            for entry in instance.history[seen.history :]:
                if entry.action not in QUIET:
                    self.act(entry.at, recorded_actor(entry.actor), self._entry(entry))
            seen.history = len(instance.history)
            for clock in instance.sla_clocks:
                key = (clock.state, clock.due_at.ToSeconds(), clock.remaining.ToSeconds())
                if seen.clocks.get(clock.name) != key:
                    seen.clocks[clock.name] = key
                    self.note(f"⏱ {self.describe_clock(clock)}")
        if ticket is not None and ticket.status != seen.status:
            seen.status = ticket.status
            status = types_pb2.TicketStatus.Name(ticket.status).removeprefix("TICKET_STATUS_")
            self.note(f"intake shows the ticket as {status}")

    def _entry(self, entry: workflow_pb2.HistoryEntry) -> str:
        if entry.action == "task.created":
            return f"new task: {entry.detail}"
        if entry.action == "task.withdrawn":
            return f"task withdrawn: {entry.detail} (no longer needed)"
        if entry.action == "started":
            return f"process {entry.element_id} started ({entry.detail})"
        if entry.action in ("completed", "cancelled"):
            return f"process {entry.action}" + (f": {entry.detail}" if entry.detail else "")
        if entry.action == "incident":
            return f"INCIDENT at {entry.element_id}: {entry.detail}"
        words = EVENT_WORDS.get(entry.action, entry.element_id)
        return f"{entry.action}: {words}" + (f" ({entry.detail})" if entry.detail else "")

    def describe_clock(self, clock: workflow_pb2.SlaClock) -> str:
        state = CLOCK_STATES.get(clock.state, "?")
        what = f"{clock.name} ({clock.target} on {clock.calendar}): {state}"
        if clock.state == workflow_pb2.SLA_CLOCK_STATE_RUNNING:
            return f"{what}, due {self.due(clock.due_at)}"
        if clock.state == workflow_pb2.SLA_CLOCK_STATE_PAUSED:
            return f"{what} while waiting for the requester, {working_time(clock.remaining.ToSeconds())} left"
        if clock.state in (workflow_pb2.SLA_CLOCK_STATE_MET, workflow_pb2.SLA_CLOCK_STATE_BREACHED):
            return f"{what} at {self.clock(clock.stopped_at)} (was due {self.due(clock.due_at)})"
        return what

    def routing(self, decision: workflow_pb2.RoutingDecision) -> None:
        priority = types_pb2.Priority.Name(decision.priority).removeprefix("PRIORITY_")
        self.note(f"priority {priority}, team {decision.team}, queue {', '.join(decision.candidate_groups)}")
        self.note("decided by these DMN rules (bpmn/dmn/):")
        for rule in decision.matched_rules:
            self.note(f"  {rule.decision_id}.dmn  {rule.rule_id}")
            self.note(f"      {rule.description}")

    # -- notifications -------------------------------------------------------------------------

    def notifications(self, number: str, found: Sequence[notify_pb2.Notification]) -> None:
        self.line(f"\nNotifications for {number} (NotifyService.ListNotifications), oldest first:")
        for n in found:
            status = notify_pb2.DeliveryStatus.Name(n.status).removeprefix("DELIVERY_STATUS_").lower()
            channel = CHANNELS.get(n.channel, "?")
            subject = n.subject if n.channel != notify_pb2.CHANNEL_IN_APP else ""
            self.line(
                f"{self.clock(n.created_at)}  {channel:<8}{n.recipient:<28}{n.event_type:<26}"
                f"{n.template:<18}{n.locale:<6}{status:<9}{subject}"
            )
            if n.last_error and n.status != notify_pb2.DELIVERY_STATUS_SENT:
                self.note(f"  last error: {n.last_error}")
        counts = {label: sum(1 for n in found if n.channel == channel) for channel, label in CHANNELS.items()}
        self.line("  " + ", ".join(f"{count} {label}" for label, count in counts.items()))

    # -- formatting ----------------------------------------------------------------------------

    def clock(self, at: datetime | Timestamp | None) -> str:
        """HH:MM:SS in the organisation's time zone (now, when `at` is None)."""
        return self._local(at).strftime("%H:%M:%S")

    def due(self, at: Timestamp) -> str:
        return self._local(at).strftime("%a %d %b %H:%M")

    def _local(self, at: datetime | Timestamp | None) -> datetime:
        if at is None:
            moment = datetime.now(UTC)
        elif isinstance(at, Timestamp):
            moment = at.ToDatetime(tzinfo=UTC)
        else:
            moment = at
        return moment.astimezone(self.zone)


def width(text: str) -> int:
    """Columns `text` takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(1, columns - width(text))


def working_time(seconds: int) -> str:
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours} h {rest // 60:02d} min of working time"
