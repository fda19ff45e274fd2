"""When to try the same deployment again, and after how long: exponential backoff with full
jitter, never sooner than the provider's retry-after and never past the request's deadline.
Pure: randomness comes in as a ``random.Random``; sleeping and re-sending are the engine's.

Retries never double-bill. Only an attempt that failed is retried, and a failed attempt
reported no usage; the ledger prices every attempt from the usage that attempt itself
reported, so a retried request costs exactly what its successful attempt used.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from thrifty.errors import ThriftyError
from thrifty.resilience.breaker import ErrorClass, classify

_MAX_EXPONENT = 62  # 2**62 * any sane base is far past every cap; avoids huge ints


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=3, ge=1)
    """Attempts in all, the first included: 1 means never retry."""
    base_s: float = Field(default=0.25, gt=0)
    """Upper bound of the first retry's jittered wait; doubles with each retry."""
    max_backoff_s: float = Field(default=8.0, gt=0)
    """Cap on the jittered wait (a retry-after may still ask for longer)."""
    max_retry_after_s: float = Field(default=30.0, ge=0)
    """A provider asking us to wait longer than this is failed over, not waited for."""
    retry_on: frozenset[ErrorClass] = frozenset({
        ErrorClass.RATE_LIMIT, ErrorClass.SERVER, ErrorClass.TIMEOUT, ErrorClass.CONNECTION,
        ErrorClass.BAD_RESPONSE,
    })


DEFAULT_RETRY = RetryPolicy()


def backoff(attempt: int, rng: random.Random, policy: RetryPolicy) -> float:
    """Full jitter: uniform over ``[0, min(max_backoff_s, base_s * 2**attempt)]``, where
    ``attempt`` is the 0-based number of the attempt that just failed. Spreading the whole
    range (not a fixed delay plus noise) keeps replicas that failed together from retrying
    together."""
    ceiling = min(policy.max_backoff_s, policy.base_s * 2 ** min(attempt, _MAX_EXPONENT))
    return rng.uniform(0.0, ceiling)


def next_delay(
    attempt: int,
    error: ThriftyError,
    rng: random.Random,
    policy: RetryPolicy,
    remaining_s: float | None,
) -> float | None:
    """Seconds to wait before retrying after attempt ``attempt`` (0-based) failed with
    ``error``, or ``None`` to stop: the error is not retryable or not in ``retry_on``, the
    attempts are used up, the provider asks for a wait over ``max_retry_after_s``, or the
    wait would reach past the ``remaining_s`` left of the request's deadline (``None`` for no
    deadline)."""
    if attempt + 1 >= policy.max_attempts:
        return None
    if not error.retryable or classify(error) not in policy.retry_on:
        return None
    delay = backoff(attempt, rng, policy)
    retry_after = error.retry_after
    if retry_after is not None and retry_after > 0:
        if retry_after > policy.max_retry_after_s:
            return None
        # Honour it, plus a little spread so everyone told "1s" does not return together.
        delay = max(delay, retry_after + rng.uniform(0.0, min(policy.base_s, policy.max_backoff_s)))
    if remaining_s is not None and delay >= remaining_s:
        return None
    return delay
