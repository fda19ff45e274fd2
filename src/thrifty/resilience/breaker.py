"""The circuit breaker of one deployment (``provider/upstream_model``) as pure functions over
an immutable :class:`BreakerState`, with time passed in. It decides when to stop sending to a
deployment and when to probe it again; it must not do I/O, read a clock or keep state of its
own (``health.py`` and ``redis_health.py`` store the states; the Redis Lua script mirrors
these functions transition for transition, and a parity test holds them together).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from thrifty.errors import (
    ClientError,
    RateLimited,
    ThriftyError,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)


class ErrorClass(StrEnum):
    RATE_LIMIT = "rate_limit"
    SERVER = "server"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"
    BAD_RESPONSE = "bad_response"
    CLIENT = "client"
    """The caller's fault (or the gateway's own limit): never counts against a deployment."""


class Phase(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


CONNECTION_CODES = frozenset({"upstream_connection_failed"})
"""``UpstreamUnavailable`` codes that mean no HTTP answer at all (refused, reset, DNS)."""


def classify(exc: ThriftyError) -> ErrorClass:
    """What kind of failure ``exc`` is for the deployment that raised it: by class and code,
    never by message text."""
    if isinstance(exc, RateLimited):
        # Without a provider it is one of the gateway's own limits, not the upstream's.
        return ErrorClass.RATE_LIMIT if exc.provider is not None else ErrorClass.CLIENT
    if isinstance(exc, ClientError) or not isinstance(exc, UpstreamError):
        return ErrorClass.CLIENT  # bad input, or our own bug: not the deployment's doing
    if isinstance(exc, UpstreamAuthFailed):
        return ErrorClass.AUTH
    if isinstance(exc, UpstreamTimeout):
        return ErrorClass.TIMEOUT
    if isinstance(exc, UpstreamBadResponse):
        return ErrorClass.BAD_RESPONSE
    if isinstance(exc, UpstreamUnavailable) and exc.code in CONNECTION_CODES:
        return ErrorClass.CONNECTION
    return ErrorClass.SERVER


class BreakerConfig(BaseModel):
    """When a deployment's breaker opens, and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failure_threshold: int = Field(default=5, ge=1)
    """Consecutive counted failures that open the breaker."""
    window_s: float = Field(default=60.0, gt=0)
    """Length of the sliding window the error rate is measured over."""
    min_requests: int = Field(default=20, ge=1)
    """The error-rate rule only applies once the window holds this many results."""
    error_rate: float = Field(default=0.5, gt=0, le=1)
    """Share of failed results in the window that opens the breaker."""
    half_open_probes: int = Field(default=1, ge=1)
    """Requests let through at once after the cooldown to test the deployment."""
    probe_timeout_s: float = Field(default=30.0, gt=0)
    """A probe whose result never arrives (client gone) is given up after this long."""
    base_cooldown_s: float = Field(default=5.0, gt=0)
    """First cooldown after server errors, timeouts, connection failures, bad responses."""
    cooldown_growth: float = Field(default=2.0, ge=1)
    """Each re-open without a close in between multiplies the cooldown by this."""
    max_cooldown_s: float = Field(default=300.0, gt=0)
    rate_limit_cooldown_s: float = Field(default=10.0, gt=0)
    """Cooldown after a 429 that did not say when to come back."""
    auth_cooldown_s: float = Field(default=600.0, gt=0)
    """A rejected key rarely fixes itself: probe again only after this long."""
    open_on_retry_after: bool = True
    """A 429 with a positive retry-after opens the breaker at once: the provider said so."""
    max_retry_after_s: float = Field(default=3600.0, gt=0)
    """Upper bound on an honoured retry-after, against absurd values."""


DEFAULT_BREAKER = BreakerConfig()


@dataclass(frozen=True, slots=True)
class BreakerState:
    state: Phase = Phase.CLOSED
    failures: int = 0
    """Consecutive counted failures."""
    opened_at: float = 0.0
    cooldown_s: float = 0.0
    opens: int = 0
    """Opens since the breaker last closed: drives the cooldown's growth."""
    probes_in_flight: int = 0
    probe_at: float = 0.0
    """When the latest probe was handed out."""
    window_start: float = 0.0
    window_requests: int = 0
    window_failures: int = 0
    prev_requests: int = 0
    """The previous window's counts, weighted down as the current window ages (a sliding
    window from two counters, cheap to mirror in Redis)."""
    prev_failures: int = 0
    last_error: ErrorClass | None = None

    def cooldown_remaining(self, now: float) -> float:
        if self.state is not Phase.OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown_s - now)

    def error_rate(self, now: float, window_s: float) -> float:
        start, req, fail, preq, pfail = _roll(self, now, window_s)
        total, bad = _estimate(start, req, fail, preq, pfail, now, window_s)
        return bad / total if total > 0 else 0.0


CLOSED = BreakerState()


def allow(
    state: BreakerState, now: float, cfg: BreakerConfig = DEFAULT_BREAKER
) -> tuple[bool, BreakerState]:
    """May a request go to the deployment now? A half-open breaker hands out at most
    ``half_open_probes`` probes; the returned state records the one just taken."""
    if state.state is Phase.CLOSED:
        return True, state  # the hot path: no allocation
    if state.state is Phase.OPEN:
        if now < state.opened_at + state.cooldown_s:
            return False, state
        return True, _probing(state, 1, now)
    if state.probes_in_flight < cfg.half_open_probes:
        return True, _probing(state, state.probes_in_flight + 1, now)
    if now - state.probe_at >= cfg.probe_timeout_s:  # the probes were lost: try again
        return True, _probing(state, 1, now)
    return False, state


def on_success(state: BreakerState, now: float, cfg: BreakerConfig) -> BreakerState:
    if state.state is Phase.HALF_OPEN:
        # Closed afresh: the window that opened it must not re-open it at once.
        return BreakerState(window_start=now, last_error=state.last_error)
    if state.state is Phase.OPEN:
        return state  # a request sent before it opened: no news about the deployment now
    start, req, fail, preq, pfail = _roll(state, now, cfg.window_s)
    return BreakerState(
        Phase.CLOSED, 0, state.opened_at, state.cooldown_s, state.opens, 0, state.probe_at,
        start, req + 1, fail, preq, pfail, state.last_error,
    )


def on_failure(
    state: BreakerState,
    now: float,
    cfg: BreakerConfig,
    error_class: ErrorClass,
    retry_after: float | None = None,
) -> BreakerState:
    if error_class is ErrorClass.CLIENT:
        return state
    if state.state is Phase.HALF_OPEN:
        return _open(state, now, cfg, error_class, retry_after, state.opens + 1)
    if state.state is Phase.OPEN:
        return _extend(state, now, cfg, error_class, retry_after)
    start, req, fail, preq, pfail = _roll(state, now, cfg.window_s)
    req, fail = req + 1, fail + 1
    failures = state.failures + 1
    total, bad = _estimate(start, req, fail, preq, pfail, now, cfg.window_s)
    trip = (
        failures >= cfg.failure_threshold
        or (total >= cfg.min_requests and bad >= cfg.error_rate * total)
        or (error_class is ErrorClass.RATE_LIMIT and retry_after is not None
            and retry_after > 0 and cfg.open_on_retry_after)
    )
    counted = BreakerState(
        Phase.CLOSED, failures, state.opened_at, state.cooldown_s, state.opens, 0,
        state.probe_at, start, req, fail, preq, pfail, error_class,
    )
    if trip:
        return _open(counted, now, cfg, error_class, retry_after, state.opens + 1)
    return counted


def cooldown_for(
    error_class: ErrorClass, opens: int, retry_after: float | None, cfg: BreakerConfig
) -> float:
    """How long the ``opens``-th consecutive open lasts. Never shorter than the provider's
    retry-after (up to ``max_retry_after_s``): probing earlier only earns another refusal."""
    if error_class is ErrorClass.AUTH:
        base = cfg.auth_cooldown_s
    elif error_class is ErrorClass.RATE_LIMIT:
        base = min(cfg.max_cooldown_s,
                   cfg.rate_limit_cooldown_s * cfg.cooldown_growth ** (opens - 1))
    else:
        base = min(cfg.max_cooldown_s, cfg.base_cooldown_s * cfg.cooldown_growth ** (opens - 1))
    if retry_after is not None and retry_after > 0:
        return max(base, min(retry_after, cfg.max_retry_after_s))
    return base


# ---- internals --------------------------------------------------------------------------


def _probing(state: BreakerState, probes: int, now: float) -> BreakerState:
    return BreakerState(
        Phase.HALF_OPEN, state.failures, state.opened_at, state.cooldown_s, state.opens,
        probes, now, state.window_start, state.window_requests, state.window_failures,
        state.prev_requests, state.prev_failures, state.last_error,
    )


def _open(state: BreakerState, now: float, cfg: BreakerConfig, error_class: ErrorClass,
          retry_after: float | None, opens: int) -> BreakerState:
    return BreakerState(
        Phase.OPEN, state.failures, now, cooldown_for(error_class, opens, retry_after, cfg),
        opens, 0, state.probe_at, state.window_start, state.window_requests,
        state.window_failures, state.prev_requests, state.prev_failures, error_class,
    )


def _extend(state: BreakerState, now: float, cfg: BreakerConfig, error_class: ErrorClass,
            retry_after: float | None) -> BreakerState:
    """A late failure while open changes nothing unless it asks us to wait longer."""
    if retry_after is None or retry_after <= 0:
        return state
    until = now + min(retry_after, cfg.max_retry_after_s)
    if until <= state.opened_at + state.cooldown_s:
        return state
    return BreakerState(
        Phase.OPEN, state.failures, state.opened_at, until - state.opened_at, state.opens, 0,
        state.probe_at, state.window_start, state.window_requests, state.window_failures,
        state.prev_requests, state.prev_failures, error_class,
    )


def _roll(state: BreakerState, now: float, window_s: float) -> tuple[float, int, int, int, int]:
    """The window counters as of ``now``: ``(start, requests, failures, prev_requests,
    prev_failures)``."""
    elapsed = now - state.window_start
    if elapsed < window_s:
        return (state.window_start, state.window_requests, state.window_failures,
                state.prev_requests, state.prev_failures)
    if elapsed < 2 * window_s:
        return state.window_start + window_s, 0, 0, state.window_requests, state.window_failures
    return now, 0, 0, 0, 0


def _estimate(start: float, req: int, fail: int, preq: int, pfail: int, now: float,
              window_s: float) -> tuple[float, float]:
    """Results in the last ``window_s``: the current window plus the previous one weighted
    by how much of it still overlaps."""
    weight = min(1.0, max(0.0, 1.0 - (now - start) / window_s))
    return preq * weight + req, pfail * weight + fail
