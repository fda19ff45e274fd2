"""How much a deployment may still take before its provider starts refusing: remaining
requests and tokens and when they reset, read from the rate-limit headers OpenAI and
Anthropic send with every answer, so the router stops sending before the 429s begin.
Pure: the time comes in; storing the headroom is ``health.py``'s business.

    OpenAI      x-ratelimit-remaining-requests / -tokens    counts
                x-ratelimit-reset-requests / -tokens        Go durations: 1s, 6m0s, 20ms, 1h2m3.5s
    Anthropic   anthropic-ratelimit-requests-remaining      counts (also -tokens-, -input-tokens-,
                                                            -output-tokens-remaining)
                anthropic-ratelimit-requests-reset / ...    RFC 3339 instants
    both        retry-after (-ms)                           seconds or an HTTP date
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from thrifty.providers.upstream_errors import retry_after_seconds

UNKNOWN_RESET_S = 1.0
"""How long an exhausted count is believed when the provider gave no reset time."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TOKEN_DIMENSIONS = ("tokens", "input-tokens", "output-tokens")
_ANY_OF = ("x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens",
           "anthropic-ratelimit-requests-remaining",
           *(f"anthropic-ratelimit-{d}-remaining" for d in _TOKEN_DIMENSIONS),
           "retry-after-ms", "retry-after")
"""Without one of these headers a response says nothing about headroom."""


@dataclass(frozen=True, slots=True)
class Headroom:
    requests_remaining: int | None = None
    """``None``: the provider did not say."""
    tokens_remaining: int | None = None
    reset_at: float | None = None
    """Epoch seconds when the request count resets (or a retry-after ends)."""
    tokens_reset_at: float | None = None
    """Epoch seconds when the token count resets; ``None``: same as ``reset_at``."""


def should_avoid(headroom: Headroom | None, now: float, est_tokens: int) -> bool:
    """True while the deployment has no request left, or fewer tokens than this request is
    estimated to need, and the count has not reset yet."""
    if headroom is None:
        return False
    reset_at = headroom.reset_at
    if (headroom.requests_remaining is not None and headroom.requests_remaining <= 0
            and reset_at is not None and now < reset_at):
        return True
    tokens_reset = headroom.tokens_reset_at if headroom.tokens_reset_at is not None else reset_at
    return (headroom.tokens_remaining is not None and headroom.tokens_remaining < est_tokens
            and tokens_reset is not None and now < tokens_reset)


def parse_headroom(headers: Mapping[str, str], now: float) -> Headroom | None:
    """The headroom the headers describe, or ``None`` when they carry no rate-limit
    information. ``headers`` must have lowercase names or be case-insensitive (aiohttp's)."""
    if not any(name in headers for name in _ANY_OF):  # most responses: a few lookups
        return None
    requests, reset_at = _openai(headers, "requests", now)
    if requests is None:
        requests, reset_at = _anthropic(headers, "requests")
    tokens, tokens_reset = _openai(headers, "tokens", now)
    if tokens is None:
        tokens, tokens_reset = _scarcest_anthropic_tokens(headers)
    wait = retry_after_seconds(headers, now)
    if wait is not None:  # "come back later" means no request left until then
        requests = 0
        reset_at = max(reset_at or 0.0, now + wait)
    if requests is None and tokens is None:
        return None
    if requests is not None and reset_at is None:
        reset_at = now + UNKNOWN_RESET_S
    if tokens is not None and tokens_reset is None:
        tokens_reset = now + UNKNOWN_RESET_S
    return Headroom(requests, tokens, reset_at, tokens_reset)


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``20ms``, ``1h2m3.5s``) or a bare number of
    seconds; ``None`` if it is neither."""
    text = text.strip()
    bare = _number(text)
    if bare is not None:
        return max(0.0, bare)
    total, pos = 0.0, 0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def parse_instant(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp (``2025-01-15T14:24:00Z``); a timestamp
    without an offset is taken as UTC."""
    text = text.strip()
    frac = re.match(r"^(.*\.\d{6})\d+(.*)$", text)  # fromisoformat takes at most 6 digits
    if frac:
        text = frac.group(1) + frac.group(2)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# ---- vendors ----------------------------------------------------------------------------


def _openai(headers: Mapping[str, str], dim: str, now: float) -> tuple[int | None, float | None]:
    remaining = _count(headers.get(f"x-ratelimit-remaining-{dim}"))
    if remaining is None:
        return None, None
    raw = headers.get(f"x-ratelimit-reset-{dim}")
    after = parse_duration(raw) if raw else None
    return remaining, (now + after if after is not None else None)


def _anthropic(headers: Mapping[str, str], dim: str) -> tuple[int | None, float | None]:
    remaining = _count(headers.get(f"anthropic-ratelimit-{dim}-remaining"))
    if remaining is None:
        return None, None
    raw = headers.get(f"anthropic-ratelimit-{dim}-reset")
    return remaining, (parse_instant(raw) if raw else None)


def _scarcest_anthropic_tokens(headers: Mapping[str, str]) -> tuple[int | None, float | None]:
    """Anthropic limits total, input and output tokens separately; the smallest remaining
    count is the one that refuses first."""
    best: tuple[int | None, float | None] = (None, None)
    for dim in _TOKEN_DIMENSIONS:
        remaining, reset = _anthropic(headers, dim)
        if remaining is not None and (best[0] is None or remaining < best[0]):
            best = (remaining, reset)
    return best


def _count(raw: str | None) -> int | None:
    if raw is None:
        return None
    value = _number(raw.strip())
    return max(0, int(value)) if value is not None else None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
