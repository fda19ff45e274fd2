"""Rate-limit headers of OpenAI and Anthropic into headroom, and when to keep away."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict

from thrifty.resilience.headroom import (
    UNKNOWN_RESET_S,
    Headroom,
    parse_duration,
    parse_headroom,
    parse_instant,
    should_avoid,
)

NOW = datetime(2025, 1, 15, 14, 23, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1), ("6m0s", 360), ("20ms", 0.02), ("12ms", 0.012), ("1h2m3.5s", 3723.5),
    ("23h47m36.648s", 23 * 3600 + 47 * 60 + 36.648), ("4m12.172s", 252.172), ("0s", 0),
    ("1.5", 1.5), ("7", 7), ("250us", 0.00025), ("3µs", 0.000003), (" 2s ", 2),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "abc", "5x", "1s2", "1 s", "m1", "nan", "inf"])
def test_not_durations(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-01-15T14:24:00Z", NOW + 60),
    ("2025-01-15T15:24:00+01:00", NOW + 60),
    ("2025-01-15T14:23:15.5Z", NOW + 15.5),
    ("2025-01-15T14:23:15.123456789Z", NOW + 15.123456),
    ("2025-01-15T14:24:00", NOW + 60),
])
def test_rfc3339_instants(text: str, expected: float) -> None:
    assert parse_instant(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "yesterday", "2025-13-45T00:00:00Z"])
def test_not_instants(text: str) -> None:
    assert parse_instant(text) is None


def test_openai_headers() -> None:
    h = parse_headroom({
        "x-ratelimit-limit-requests": "5000", "x-ratelimit-limit-tokens": "160000",
        "x-ratelimit-remaining-requests": "4999", "x-ratelimit-remaining-tokens": "159976",
        "x-ratelimit-reset-requests": "12ms", "x-ratelimit-reset-tokens": "6m0s",
    }, NOW)
    assert h is not None
    assert (h.requests_remaining, h.tokens_remaining) == (4999, 159976)
    assert h.reset_at == pytest.approx(NOW + 0.012) and h.tokens_reset_at == NOW + 360


def test_anthropic_headers_take_the_scarcest_token_count() -> None:
    h = parse_headroom({
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "3201",
        "anthropic-ratelimit-requests-reset": "2025-01-15T14:24:00Z",
        "anthropic-ratelimit-tokens-remaining": "312000",
        "anthropic-ratelimit-tokens-reset": "2025-01-15T14:23:15Z",
        "anthropic-ratelimit-input-tokens-remaining": "90000",
        "anthropic-ratelimit-input-tokens-reset": "2025-01-15T14:23:30Z",
        "anthropic-ratelimit-output-tokens-remaining": "150000",
        "anthropic-ratelimit-output-tokens-reset": "2025-01-15T14:23:10Z",
    }, NOW)
    assert h == Headroom(3201, 90000, NOW + 60, NOW + 30)


def test_retry_after_means_no_request_left_until_then() -> None:
    h = parse_headroom({"retry-after": "20", "x-ratelimit-remaining-requests": "3",
                        "x-ratelimit-reset-requests": "1s"}, NOW)
    assert h is not None and h.requests_remaining == 0 and h.reset_at == NOW + 20
    ms = parse_headroom({"retry-after-ms": "1500"}, NOW)
    assert ms == Headroom(0, None, NOW + 1.5, None)


def test_case_insensitive_headers_as_aiohttp_gives_them() -> None:
    headers = CIMultiDict({"X-RateLimit-Remaining-Requests": "0",
                           "X-RateLimit-Reset-Requests": "2s"})
    assert parse_headroom(headers, NOW) == Headroom(0, None, NOW + 2, None)


def test_missing_or_garbled_headers() -> None:
    assert parse_headroom({}, NOW) is None
    assert parse_headroom({"content-type": "application/json"}, NOW) is None
    assert parse_headroom({"x-ratelimit-remaining-requests": "lots"}, NOW) is None
    # A count without a reset is believed only briefly.
    h = parse_headroom({"anthropic-ratelimit-tokens-remaining": "10"}, NOW)
    assert h == Headroom(None, 10, None, NOW + UNKNOWN_RESET_S)
    bad_reset = parse_headroom({"x-ratelimit-remaining-requests": "0",
                                "x-ratelimit-reset-requests": "soon"}, NOW)
    assert bad_reset == Headroom(0, None, NOW + UNKNOWN_RESET_S, None)


def test_avoid_while_requests_are_exhausted_until_the_reset() -> None:
    h = Headroom(requests_remaining=0, tokens_remaining=10**6, reset_at=NOW + 5)
    assert should_avoid(h, NOW, 100)
    assert should_avoid(h, NOW + 4.99, 100)
    assert not should_avoid(h, NOW + 5, 100)
    assert not should_avoid(Headroom(1, 10**6, NOW + 5), NOW, 100)


def test_avoid_when_tokens_cannot_cover_the_estimate() -> None:
    h = Headroom(requests_remaining=50, tokens_remaining=1000, reset_at=NOW + 1,
                 tokens_reset_at=NOW + 30)
    assert should_avoid(h, NOW + 10, 1001)
    assert not should_avoid(h, NOW + 10, 1000)
    assert not should_avoid(h, NOW + 30, 5000)  # the token count has reset
    # Without its own reset the token count goes by reset_at.
    assert not should_avoid(Headroom(50, 1000, NOW + 1), NOW + 2, 5000)
    assert should_avoid(Headroom(50, 1000, NOW + 1), NOW, 5000)


def test_unknown_headroom_never_avoids() -> None:
    assert not should_avoid(None, NOW, 10**9)
    assert not should_avoid(Headroom(), NOW, 10**9)
    assert not should_avoid(Headroom(0, 0, None, None), NOW, 10**9)


def test_headers_to_decision() -> None:
    headers = {"x-ratelimit-remaining-requests": "40", "x-ratelimit-remaining-tokens": "800",
               "x-ratelimit-reset-tokens": "6s", "x-ratelimit-reset-requests": "1s"}
    h = parse_headroom(headers, NOW)
    assert should_avoid(h, NOW + 1, est_tokens=2000)
    assert not should_avoid(h, NOW + 1, est_tokens=500)
    assert not should_avoid(h, NOW + 6, est_tokens=2000)
