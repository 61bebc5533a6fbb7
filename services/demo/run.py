"""The `supportflow demo` command: check that the system is up, play the story for each ticket,
then list the notifications each ticket caused. Errors end the demo with what to do."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

from supportflow.notify.v1 import notify_pb2

from services.demo.cast import CAST
from services.demo.desk import DemoError, Desk, Endpoints
from services.demo.story import STEPS
from services.demo.ticket import Run, play
from services.demo.timeline import Progress, Timeline


@dataclass(frozen=True)
class Options:
    endpoints: Endpoints
    secret: str
    org: str = "acme"
    tickets: int = 1
    time_zone: str = "Asia/Shanghai"
    wait_seconds: float = 60.0


def run(options: Options, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    timeline = Timeline(out, options.time_zone)
    desk = Desk(
        options.endpoints, secret=options.secret, org=options.org, progress=Progress(err),
        wait_seconds=options.wait_seconds,
    )  # fmt: skip
    with desk:
        try:
            desk.check_up()
            _introduce(timeline, options)
            numbers = []
            for sequence in range(1, options.tickets + 1):
                started = time.monotonic()
                story = Run(desk, timeline, sequence)
                play(story, STEPS)
                timeline.line(
                    f"\n✔ {story.number} went through the whole process in {time.monotonic() - started:.0f} s"
                )
                numbers.append(story.number)
            for number in numbers:
                timeline.notifications(number, _notifications_settled(desk, number))
            timeline.line(
                "\nThe e-mails themselves: ./dev up's local mail sink keeps each as a file in .supportflow/mail/new/"
                " (<--data-dir>/mail/new/ if you gave ./dev up one)"
            )
        except DemoError as error:
            print(f"\n✘ {error}", file=err)
            return 1
        except KeyboardInterrupt:
            print("\n✘ interrupted; the ticket stays where it is (see it with GetTicket)", file=err)
            return 130
    return 0


def _introduce(timeline: Timeline, options: Options) -> None:
    e = options.endpoints
    timeline.line("supportflow demo: a ticket through the whole support process (shared SOP §1), run by bpmn/")
    timeline.line(
        f"  intake {e.intake} · workflow {e.workflow} · notify {e.notify} · organisation {options.org}"
        f" · times in {options.time_zone}"
    )
    timeline.line("  people: " + " · ".join(f"{p.label} {'/'.join(p.groups or p.roles)}" for p in CAST))


def _notifications_settled(desk: Desk, number: str) -> list[notify_pb2.Notification]:
    """The ticket's notifications once notify has recorded the closing notice and sent (or given
    up on, for now) everything before it."""

    def probe() -> list[notify_pb2.Notification] | None:
        found = desk.notifications(number)
        closed = any(n.event_type == "ticket.closed" for n in found)
        pending = any(n.status == notify_pb2.DELIVERY_STATUS_PENDING for n in found)
        return found if closed and not pending else None

    return desk.wait(f"notify to send the notices of {number}", probe, service="notify")
