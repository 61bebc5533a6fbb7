"""How many messages a chat robot may get now: at most `max_per_minute` in any 60 seconds.

DingTalk's custom robots take 20 messages a minute and, past that, refuse every message for the
next 10 minutes; WeCom's group robots take 20 a minute. So notify counts, per robot, what it sent
in the last minute (across all its replicas, in the database) and holds the rest back, unsent and
without using an attempt, until the oldest of those sends is a minute old. A sliding window, not
a token bucket: a bucket refilling 20 a minute lets 40 through in one minute after a quiet one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

WINDOW: Final = timedelta(minutes=1)
#: What a robot of each kind takes when `directory.toml` does not say (0: no limit).
DEFAULT_PER_MINUTE: Final = {"dingtalk": 20, "wecom": 20, "generic": 0}
#: The most `max_per_minute` may say.
MAX_PER_MINUTE: Final = 10_000


@dataclass(frozen=True, slots=True)
class Allowance:
    #: How many of the messages waiting may go now.
    now: int
    #: When the next of the others may go (None: all may go now).
    next_at: datetime | None


def allowance(sent: Sequence[datetime], max_per_minute: int, now: datetime, waiting: int) -> Allowance:
    """`sent`: when the robot's messages of the last minute went, oldest first (older ones are
    ignored). Those that may go now are taken to go at `now`."""
    if max_per_minute <= 0:
        return Allowance(waiting, None)
    recent = [at for at in sent if at > now - WINDOW]
    take = max(0, min(waiting, max_per_minute - len(recent)))
    if take == waiting:
        return Allowance(take, None)
    # The window is full once these go: the next slot opens when its oldest send leaves it.
    window = [*recent, *[now] * take]
    return Allowance(take, window[len(window) - max_per_minute] + WINDOW)
