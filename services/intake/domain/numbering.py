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


def format_ticket_number(prefix: str, day: date, serial: int) -> str:
    if serial < 1:
        raise ValueError("serials start at 1")
    return f"{prefix}{day:%Y%m%d}{serial:0{SERIAL_DIGITS}d}"


def is_ticket_number(text: str) -> bool:
    return TICKET_NUMBER.match(text) is not None
