"""Ticket numbers: prefix + the organisation's local date + a daily serial (SOP §2, seed 002).

`TS20261122000001` is the first ticket of 22 November 2026. Serials are zero-padded to six digits;
a day with more than 999,999 tickets continues with seven digits (`TS202611221000000`), so numbers
stay unique and are never reused, and nothing is refused.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

SERIAL_DIGITS = 6
PREFIX = re.compile(r"^[A-Z]{1,8}$")
TICKET_NUMBER = re.compile(r"^(?P<prefix>[A-Z]{1,8})(?P<day>\d{8})(?P<serial>\d{6,})$")


def business_day(now: datetime, tz: ZoneInfo) -> date:
    """The organisation's calendar date at `now` (a ticket at 23:30 UTC is tomorrow in Shanghai)."""
    return now.astimezone(tz).date()


def ticket_numbers(prefix: str, day: date, last_serial: int, count: int) -> list[str]:
    """The `count` numbers of `day` up to `last_serial`, in order: what one bump of the day's
    counter by `count` hands out."""
    first = last_serial - count + 1
    if first < 1:
        raise ValueError("serials start at 1")
    stem = f"{prefix}{day:%Y%m%d}"  # formatting a date costs more than the rest; once per batch
    return [stem + str(serial).zfill(SERIAL_DIGITS) for serial in range(first, last_serial + 1)]


def is_ticket_number(text: str) -> bool:
    return TICKET_NUMBER.match(text) is not None
