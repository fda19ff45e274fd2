"""Retry timing: full-jitter backoff, retry-after honoured, deadlines and attempts kept."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from thrifty.errors import (
    ContextWindowExceeded,
    InvalidRequest,
    RateLimited,
    ThriftyError,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from thrifty.resilience.breaker import ErrorClass
from thrifty.resilience.retry import RetryPolicy, backoff, next_delay

POLICY = RetryPolicy(max_attempts=4, base_s=0.5, max_backoff_s=4, max_retry_after_s=20)
P = "openai"


def test_backoff_doubles_its_ceiling_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(0, 0.5), (1, 1), (2, 2), (3, 4), (4, 4), (50, 4), (10_000, 4)]:
        samples = [backoff(attempt, rng, POLICY) for _ in range(2000)]
        assert min(samples) >= 0 and max(samples) <= ceiling
        # Full jitter spreads over the whole range, not a fixed delay plus noise.
        assert statistics.mean(samples) == pytest.approx(ceiling / 2, rel=0.1)
        assert max(samples) > 0.9 * ceiling and min(samples) < 0.1 * ceiling


def test_the_schedule_is_reproducible_from_the_seed() -> None:
    def schedule(seed: int) -> list[float | None]:
        rng = random.Random(seed)
        err = UpstreamUnavailable("503", provider=P)
        return [next_delay(a, err, rng, POLICY, None) for a in range(5)]

    assert schedule(1) == schedule(1)
    assert schedule(1) != schedule(2)


@pytest.mark.parametrize("exc", [
    UpstreamUnavailable("503", provider=P), UpstreamTimeout("t", provider=P),
    UpstreamBadResponse("junk", provider=P), RateLimited("429", provider=P),
    UpstreamUnavailable("refused", provider=P, code="upstream_connection_failed"),
])
def test_transient_upstream_errors_are_retried(exc: ThriftyError) -> None:
    assert next_delay(0, exc, random.Random(0), POLICY, None) is not None


@pytest.mark.parametrize("exc", [
    InvalidRequest("bad", provider=P), ContextWindowExceeded("long", provider=P),
    UpstreamAuthFailed("key", provider=P), RateLimited("the gateway's own limit"),
])
def test_errors_a_retry_cannot_fix_are_not_retried(exc: ThriftyError) -> None:
    assert next_delay(0, exc, random.Random(0), POLICY, None) is None


def test_retry_on_selects_the_classes() -> None:
    only_rate = POLICY.model_copy(update={"retry_on": frozenset({ErrorClass.RATE_LIMIT})})
    rng = random.Random(0)
    assert next_delay(0, UpstreamTimeout("t", provider=P), rng, only_rate, None) is None
    assert next_delay(0, RateLimited("429", provider=P), rng, only_rate, None) is not None


def test_attempts_are_counted_from_zero_and_capped() -> None:
    err, rng = UpstreamUnavailable("503", provider=P), random.Random(0)
    assert [next_delay(a, err, rng, POLICY, None) is not None for a in range(6)] == [
        True, True, True, False, False, False]  # 4 attempts: 3 retries
    once = POLICY.model_copy(update={"max_attempts": 1})
    assert next_delay(0, err, rng, once, None) is None


def test_retry_after_is_never_cut_short() -> None:
    err = RateLimited("429", provider=P, retry_after=7.5)
    for seed in range(200):
        delay = next_delay(0, err, random.Random(seed), POLICY, None)
        assert delay is not None and 7.5 <= delay <= 7.5 + POLICY.base_s


def test_a_retry_after_longer_than_we_wait_means_fail_over() -> None:
    err = RateLimited("429", provider=P, retry_after=21)
    assert next_delay(0, err, random.Random(0), POLICY, None) is None


def test_no_wait_reaches_past_the_deadline() -> None:
    err = RateLimited("429", provider=P, retry_after=3)
    assert next_delay(0, err, random.Random(0), POLICY, 3.0) is None
    assert next_delay(0, err, random.Random(0), POLICY, 3.6) is not None
    assert next_delay(0, UpstreamTimeout("t", provider=P), random.Random(0), POLICY, 0) is None


def test_policy_is_strict() -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(max_attempt=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        RetryPolicy(max_attempts=0)


ERRORS = st.sampled_from([UpstreamUnavailable, UpstreamTimeout, RateLimited, InvalidRequest,
                          UpstreamAuthFailed])


@settings(max_examples=500, deadline=None)
@given(
    attempt=st.integers(0, 12),
    kind=ERRORS,
    retry_after=st.one_of(st.none(), st.floats(0, 60)),
    remaining=st.one_of(st.none(), st.floats(0, 120)),
    max_attempts=st.integers(1, 8),
    base=st.floats(0.01, 2),
    cap=st.floats(0.01, 30),
    seed=st.integers(0, 2**32),
)
def test_schedule_properties(attempt: int, kind: type[ThriftyError], retry_after: float | None,
                             remaining: float | None, max_attempts: int, base: float,
                             cap: float, seed: int) -> None:
    policy = RetryPolicy(max_attempts=max_attempts, base_s=base, max_backoff_s=cap,
                         max_retry_after_s=30)
    err = kind("x", provider=P, retry_after=retry_after)
    delay = next_delay(attempt, err, random.Random(seed), policy, remaining)
    if attempt + 1 >= max_attempts or not err.retryable or kind is UpstreamAuthFailed:
        assert delay is None
    if delay is None:
        return
    assert delay >= 0
    if retry_after:
        assert retry_after <= delay <= max(cap, retry_after + min(base, cap))
    else:
        assert delay <= min(cap, base * 2**attempt)
    if remaining is not None:
        assert delay < remaining
