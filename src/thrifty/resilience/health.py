"""Where the breakers and headroom of every deployment live: the :class:`HealthStore`
protocol the engine and router talk to, and :class:`MemoryHealth`, its in-process
implementation (one gateway process). ``redis_health.py`` shares the same state between
replicas. The decisions themselves are ``breaker.py``'s; a store only keeps and applies them.

Example, the engine around one attempt::

    if not await health.allow(target.key):
        ...  # skip this deployment: its breaker is open or its probes are taken
    try:
        result = await attempt(target)
    except ThriftyError as exc:
        await health.record_failure(target.key, classify(exc), exc.retry_after)
        raise
    await health.record_success(target.key)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from thrifty.core.clock import Clock
from thrifty.resilience.breaker import (
    CLOSED,
    BreakerConfig,
    BreakerState,
    ErrorClass,
    Phase,
    allow,
    on_failure,
    on_success,
)
from thrifty.resilience.headroom import Headroom


@dataclass(frozen=True, slots=True)
class DeploymentHealth:
    """What a dashboard, a readiness check or a router sees of one deployment."""

    state: Phase
    error_rate: float
    """Share of failed results over the breaker's window (0 when there were none)."""
    consecutive_failures: int
    cooldown_remaining_s: float
    """Seconds until an open breaker lets a probe through; 0 unless open."""
    opens: int
    """Opens since the breaker last closed (the cooldown grows with it)."""
    headroom: Headroom | None
    last_error: ErrorClass | None


class HealthStore(Protocol):
    """Keys are deployment keys, ``Target.key`` (``provider/upstream_model``). Every attempt
    that ``allow`` admitted must be followed by one ``record_success`` or
    ``record_failure``; a probe whose result never comes is given up after
    ``BreakerConfig.probe_timeout_s``."""

    async def allow(self, key: str) -> bool:
        """May an attempt go to ``key`` now? Takes one probe when the breaker is half-open."""

    async def record_success(self, key: str) -> None: ...

    async def record_failure(
        self, key: str, error_class: ErrorClass, retry_after: float | None
    ) -> None:
        """Count a failure (``ErrorClass.CLIENT`` is ignored: not the deployment's fault)."""

    async def record_headroom(self, key: str, headroom: Headroom) -> None: ...

    async def snapshot(self) -> dict[str, DeploymentHealth]: ...


def deployment_health(state: BreakerState, headroom: Headroom | None, now: float,
                      cfg: BreakerConfig) -> DeploymentHealth:
    return DeploymentHealth(
        state=state.state,
        error_rate=state.error_rate(now, cfg.window_s),
        consecutive_failures=state.failures,
        cooldown_remaining_s=state.cooldown_remaining(now),
        opens=state.opens,
        headroom=headroom,
        last_error=state.last_error,
    )


class MemoryHealth:
    """:class:`HealthStore` in this process's memory. Each call runs without awaiting, so
    concurrent tasks cannot interleave inside a transition."""

    def __init__(self, cfg: BreakerConfig, clock: Clock) -> None:
        self._cfg = cfg
        self._clock = clock
        self._states: dict[str, BreakerState] = {}
        self._headroom: dict[str, Headroom] = {}

    async def allow(self, key: str) -> bool:
        state = self._states.get(key)
        if state is None or state.state is Phase.CLOSED:
            return True  # the per-attempt path: one dict lookup, nothing allocated
        ok, new = allow(state, self._clock.now(), self._cfg)
        if new is not state:
            self._states[key] = new
        return ok

    async def record_success(self, key: str) -> None:
        state = self._states.get(key, CLOSED)
        self._states[key] = on_success(state, self._clock.now(), self._cfg)

    async def record_failure(
        self, key: str, error_class: ErrorClass, retry_after: float | None
    ) -> None:
        if error_class is ErrorClass.CLIENT:
            return
        state = self._states.get(key, CLOSED)
        self._states[key] = on_failure(state, self._clock.now(), self._cfg, error_class,
                                       retry_after)

    async def record_headroom(self, key: str, headroom: Headroom) -> None:
        self._headroom[key] = headroom

    async def breaker_state(self, key: str) -> BreakerState:
        return self._states.get(key, CLOSED)

    async def snapshot(self) -> dict[str, DeploymentHealth]:
        now = self._clock.now()
        keys = self._states.keys() | self._headroom.keys()
        return {
            key: deployment_health(self._states.get(key, CLOSED), self._headroom.get(key), now,
                                   self._cfg)
            for key in sorted(keys)
        }
