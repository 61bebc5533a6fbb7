"""How a webhook's answer is read: delivered, to be tried again later, or refused for good.

As webhook senders that get it right read theirs (Stripe and GitHub deliver on any 2xx; DingTalk's
and WeCom's robot documentation for the error codes in their 200 answers), and as RFC 9110 defines
the status codes:

- **2xx**: delivered. A generic receiver's body is not read; a robot's is (below).
- **408** request timeout, **425** too early, **429** too many requests, **421** misdirected
  (RFC 9110 §15.5.20: retry on another connection, which the next attempt opens) and **every 5xx**:
  the receiver, not this message — retried with backoff, waiting at least what a `Retry-After`
  header asks (seconds or an HTTP date). So is no answer at all: a refused connection, a reset, a
  timeout (the sender says so).
- **any other 4xx** — 400 bad request, 401/403 our credentials, 404/410 no such endpoint (any
  more), 413 too large, 422 content refused, …: the same request gets the same answer — dead at
  once (`permanent`), with the receiver's words; RetryNotification sends it again once someone has
  fixed the cause. Except a **413 with Retry-After**: RFC 9110 §15.5.14, the condition is temporary.
- **301 / 308** moved permanently: the configured URL is out of date (we do not follow redirects:
  re-posting a message elsewhere is not ours to decide) — dead at once. Other 1xx/3xx: retried.

DingTalk and WeCom group robots answer **HTTP 200 with `{"errcode": n, "errmsg": "…"}`**; 0 is
delivered. Retried: **-1** (both: system busy, "try again later"), DingTalk **130101** ("send too
fast": more than 20 messages a minute throttle the robot for 10 minutes, so the next try waits that
long), WeCom **45009** ("api freq out of limit": 20 messages a minute per robot, so at least a
minute) and **45033** (too many concurrent calls). **Any other errcode** is about the robot's
settings or the message — DingTalk 310000 (signature, keyword or IP allow-list mismatch), WeCom
93000 (invalid webhook URL: wrong key or robot removed), 40008 (message type), … — dead at once.
A robot's 2xx that is not JSON came from something in between (a proxy's page): retried.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

#: 4xx answers that say "not now" rather than "not this" (RFC 9110 §15.5.9, RFC 8470, RFC 6585).
TEMPORARY_4XX = frozenset({408, 421, 425, 429})
#: Redirects that say the URL itself has moved: the configuration is wrong, not the moment.
MOVED = frozenset({301, 308})
#: Robot error codes worth trying again, with the least wait each implies (None: the backoff).
TEMPORARY_ERRCODES: dict[str, dict[int, timedelta | None]] = {
    "dingtalk": {-1: None, 130101: timedelta(minutes=10)},
    "wecom": {-1: None, 45009: timedelta(minutes=1), 45033: None},
}
#: Longest Retry-After read; longer ones are capped by the retry policy anyway.
MAX_RETRY_AFTER = timedelta(days=7)
_SECONDS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a webhook call did not deliver: `reason` as operators read it; `permanent` when trying
    again cannot help; `retry_after` the least wait the receiver asked for."""

    reason: str
    permanent: bool = False
    retry_after: timedelta | None = None


def read_answer(kind: str, status: int, body: bytes, *, retry_after: str | None, now: datetime) -> Refusal | None:
    """The answer to one call of a `kind` webhook (generic, dingtalk, wecom), or None if it was
    delivered. `retry_after`: the answer's Retry-After header, if any; `now` to read a date in it."""
    if not 200 <= status < 300:
        return _http_refusal(status, body, retry_after_header(retry_after, now))
    if kind in TEMPORARY_ERRCODES:
        return _robot_refusal(kind, body)
    return None


def _http_refusal(status: int, body: bytes, wait: timedelta | None) -> Refusal:
    reason = f"HTTP {status}" + (f": {_snippet(body)}" if body.strip() else "")
    if wait is not None:
        reason += f" (Retry-After {_duration(wait)})"
    refused = 400 <= status < 500 and status not in TEMPORARY_4XX and not (status == 413 and wait is not None)
    if refused or status in MOVED:
        return Refusal(reason, permanent=True)
    return Refusal(reason, retry_after=wait)


def _robot_refusal(kind: str, body: bytes) -> Refusal | None:
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return Refusal(f"{kind} answered with something other than JSON: {_snippet(body)}")
    if not isinstance(answer, dict):
        return Refusal(f"{kind} answered with something other than a JSON object: {_snippet(body)}")
    code = _errcode(answer.get("errcode", 0))
    if code == 0:
        return None
    if code is None:  # not the robot's own answer either
        return Refusal(f"{kind} answered errcode {answer.get('errcode')!r}: {answer.get('errmsg', '')}")
    reason = f"{kind} errcode {code}: {answer.get('errmsg', '')}"
    temporary = TEMPORARY_ERRCODES[kind]
    if code in temporary:
        return Refusal(reason, retry_after=temporary[code])
    return Refusal(reason, permanent=True)


def _errcode(value: object) -> int | None:
    """The robot's errcode as a number (DingTalk's documentation shows it as a string, too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None


def retry_after_header(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (RFC 9110 §10.2.3): delay-seconds or an HTTP date; None when absent
    or unreadable. A date in the past is no wait."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        longest = int(MAX_RETRY_AFTER.total_seconds())
        # Capped before timedelta (and int): a 30-digit value would overflow either.
        return timedelta(seconds=min(int(value), longest) if len(value) <= len(str(longest)) else longest)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when - now, timedelta(0)), MAX_RETRY_AFTER)


def _snippet(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").strip()


def _duration(wait: timedelta) -> str:
    return f"{int(wait.total_seconds())} s"
