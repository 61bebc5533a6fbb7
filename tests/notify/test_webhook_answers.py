"""How a webhook's answer is read (pure, milliseconds): delivered; retried, after at least the wait
the receiver names; or refused for good — per HTTP status, Retry-After and robot error code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.adapters.webhook_answers import Refusal, read_answer, retry_after_header

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
S = timedelta(seconds=1)
OK = b'{"errcode":0,"errmsg":"ok"}'


def read(kind: str, status: int, body: bytes = b"", retry_after: str | None = None) -> Refusal | None:
    return read_answer(kind, status, body, retry_after=retry_after, now=NOW)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_delivers_to_a_generic_receiver_whatever_its_body(status: int) -> None:
    assert read("generic", status, b"<html>thanks</html>") is None


@pytest.mark.parametrize("status", [408, 421, 425, 429, 500, 502, 503, 504, 507, 599])
def test_timeouts_rate_limits_and_server_errors_are_tried_again(status: int) -> None:
    assert read("generic", status, b"busy") == Refusal(f"HTTP {status}: busy")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 451])
def test_other_client_errors_are_refused_for_good(status: int) -> None:
    assert read("generic", status, b"no such hook") == Refusal(f"HTTP {status}: no such hook", permanent=True)


def test_a_robot_behind_a_failing_proxy_is_read_by_its_http_status_first() -> None:
    assert read("wecom", 502, b"<html>Bad Gateway</html>") == Refusal("HTTP 502: <html>Bad Gateway</html>")
    assert read("dingtalk", 404, OK) == Refusal(f"HTTP 404: {OK.decode()}", permanent=True)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("120", 120 * S),
        (" 0 ", timedelta(0)),
        ("Mon, 02 Mar 2026 01:05:00 GMT", 300 * S),
        ("Mon, 02 Mar 2026 00:59:00 GMT", timedelta(0)),  # already past: no wait
        ("99999999999999999999999999999999", timedelta(days=7)),  # capped, not an overflow
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, wait: timedelta | None) -> None:
    assert retry_after_header(header, NOW) == wait


def test_a_retry_after_on_a_temporary_answer_is_the_least_wait() -> None:
    assert read("generic", 429, b"slow down", "120") == Refusal(
        "HTTP 429: slow down (Retry-After 120 s)", retry_after=120 * S
    )
    assert read("generic", 503, b"", "Mon, 02 Mar 2026 02:00:00 GMT") == Refusal(
        "HTTP 503 (Retry-After 3600 s)", retry_after=3600 * S
    )


def test_a_413_with_retry_after_is_temporary_and_without_it_final() -> None:
    # RFC 9110 §15.5.14: a Retry-After says the condition is temporary.
    assert read("generic", 413, b"", "30") == Refusal("HTTP 413 (Retry-After 30 s)", retry_after=30 * S)
    assert read("generic", 413, b"") == Refusal("HTTP 413", permanent=True)
    # Elsewhere a Retry-After does not make a refusal temporary.
    assert read("generic", 403, b"", "30") == Refusal("HTTP 403 (Retry-After 30 s)", permanent=True)


@pytest.mark.parametrize(("status", "permanent"), [(301, True), (308, True), (302, False), (307, False)])
def test_a_url_moved_for_good_is_final_and_other_redirects_are_tried_again(status: int, permanent: bool) -> None:
    assert read("generic", status) == Refusal(f"HTTP {status}", permanent=permanent)


@pytest.mark.parametrize(
    ("kind", "body", "refusal"),
    [
        ("dingtalk", OK, None),
        ("dingtalk", b'{"errcode":"0","errmsg":"ok"}', None),
        ("wecom", OK, None),
        ("wecom", b"", None),
        (
            "dingtalk",
            b'{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}',
            Refusal("dingtalk errcode 130101: send too fast, exceed 20 times per minute", retry_after=600 * S),
        ),
        ("dingtalk", '{"errcode":-1,"errmsg":"系统繁忙"}'.encode(), Refusal("dingtalk errcode -1: 系统繁忙")),
        (
            "wecom",
            b'{"errcode":45009,"errmsg":"api freq out of limit"}',
            Refusal("wecom errcode 45009: api freq out of limit", retry_after=60 * S),
        ),
        ("wecom", b'{"errcode":-1,"errmsg":"system busy"}', Refusal("wecom errcode -1: system busy")),
        (
            "dingtalk",
            b'{"errcode":310000,"errmsg":"keywords not in content"}',
            Refusal("dingtalk errcode 310000: keywords not in content", permanent=True),
        ),
        (
            "dingtalk",
            b'{"errcode":"310000","errmsg":"sign not match"}',
            Refusal("dingtalk errcode 310000: sign not match", permanent=True),
        ),
        (
            "wecom",
            b'{"errcode":93000,"errmsg":"invalid webhook url"}',
            Refusal("wecom errcode 93000: invalid webhook url", permanent=True),
        ),
        # DingTalk's rate-limit code means nothing to WeCom: another robot's words, another meaning.
        ("wecom", b'{"errcode":130101,"errmsg":"?"}', Refusal("wecom errcode 130101: ?", permanent=True)),
        ("wecom", b"<html>", Refusal("wecom answered with something other than JSON: <html>")),
        ("dingtalk", b"[]", Refusal("dingtalk answered with something other than a JSON object: []")),
        ("dingtalk", b'{"errcode":"busy"}', Refusal("dingtalk answered errcode 'busy': ")),
    ],
)
def test_robot_error_codes_are_read_in_their_200_answers(kind: str, body: bytes, refusal: Refusal | None) -> None:
    assert read(kind, 200, body) == refusal
