"""Failover and retries for one step of a plan: try a model's deployments in order,
skipping those whose circuit breaker is open, retry rounds with full-jitter backoff
(honouring retry-after, within the request's deadline), and, when every deployment failed,
move on to the fallback models configured for that kind of failure.

Health is shared (in-process, or Redis across replicas); every attempt is a priced
:class:`Call` on the request's outcome, so a retried request is never billed twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from thrifty.config.schema import FallbackRule, ResilienceConfig
from thrifty.core.clock import Clock
from thrifty.core.estimate import estimate_prompt_tokens
from thrifty.engine.account import Outcome
from thrifty.engine.calls import Call
from thrifty.errors import (
    ContentPolicyViolation,
    ContextWindowExceeded,
    ThriftyError,
    UpstreamUnavailable,
)
from thrifty.providers.base import Target
from thrifty.resilience.breaker import BreakerConfig, ErrorClass, classify
from thrifty.resilience.headroom import Headroom, parse_headroom, should_avoid
from thrifty.resilience.health import HealthStore, MemoryHealth
from thrifty.resilience.retry import RetryPolicy, next_delay

if TYPE_CHECKING:
    from thrifty.engine.gateway import Gateway

log = logging.getLogger("thrifty.resilience")
T = TypeVar("T")
Attempt = Callable[[Target], Awaitable[T]]

# fallback reasons (config vocabulary) per breaker error class
_REASONS = {ErrorClass.RATE_LIMIT: "rate_limit", ErrorClass.SERVER: "server_error",
            ErrorClass.TIMEOUT: "timeout", ErrorClass.CONNECTION: "connection",
            ErrorClass.BAD_RESPONSE: "bad_response", ErrorClass.AUTH: "auth"}


def make_health(cfg: ResilienceConfig, clock: Clock) -> HealthStore:
    breaker = BreakerConfig.model_validate(cfg.health.breaker)
    if cfg.health.backend == "redis":
        from thrifty.resilience.redis_health import RedisHealth

        return RedisHealth(cfg.health.redis_url, breaker, clock, prefix=cfg.health.redis_prefix)
    return MemoryHealth(breaker, clock)


def fallback_reason(exc: ThriftyError) -> str:
    if isinstance(exc, ContextWindowExceeded):
        return "context_window"
    if isinstance(exc, ContentPolicyViolation):
        return "content_policy"
    return _REASONS.get(classify(exc), "client")


def fallback_models(rules: Sequence[FallbackRule], extra: Sequence[str],
                    exc: ThriftyError) -> list[str]:
    """Models to try after ``exc``: the request's own list first (any failure a fallback
    can fix), then the configured rules whose reasons match, in order."""
    reason = fallback_reason(exc)
    out = list(extra) if reason != "client" else []
    for rule in rules:
        if reason in rule.on or ("any" in rule.on and reason != "client"):
            out.extend(rule.to)
    return list(dict.fromkeys(out))


class Resilience:
    def __init__(self, gw: Gateway, cfg: ResilienceConfig,
                 fallbacks: Mapping[str, Sequence[FallbackRule]], rng: random.Random) -> None:
        self._gw = gw
        self.health = make_health(cfg, gw.clock)
        self.policy = RetryPolicy(max_attempts=cfg.retries.max_attempts,
                                  base_s=cfg.retries.base_s,
                                  max_backoff_s=cfg.retries.max_backoff_s)
        self._fallbacks = fallbacks
        self._rng = rng
        self._cfg = cfg
        # The providers' own rate-limit counters, as their latest response headers told
        # this worker (the headers are the provider's global truth, so no sharing needed).
        self._headroom: dict[str, Headroom] = {}
        self._hedged_routes = any(r.hedge for r in gw.routes.routes())

    async def run(self, model: str, targets: Sequence[Target], tier: int, outcome: Outcome,
                  fn: Attempt[T], *, streaming: bool = False) -> tuple[T, Call]:
        """``targets`` (one model's deployments, or a plan's fallback chain), then the
        fallback models for the way they failed."""
        tried = {model}
        queue: list[Sequence[Target]] = [targets]
        while True:
            try:
                return await self._deployments(queue.pop(0), tier, outcome, fn, streaming)
            except ThriftyError as exc:
                nxt = [m for m in fallback_models(self._fallbacks.get(model, ()),
                                                  outcome.req.options.fallbacks, exc)
                       if m not in tried and m in self._gw.routes]
                if not nxt and not queue:
                    raise
                for m in nxt:
                    tried.add(m)
                    queue.append(self._gw.routes.resolve(m).targets)
                outcome.trace.escalation = f"fallback after {fallback_reason(exc)}"
                log.info("%s failed (%s): falling back to %s", model, exc.code, nxt)

    async def _deployments(self, targets: Sequence[Target], tier: int, outcome: Outcome,
                           fn: Attempt[T], streaming: bool) -> tuple[T, Call]:
        health = self.health
        last: ThriftyError | None = None
        targets = self._by_headroom(targets, outcome)
        hedge = self._hedge_delay(outcome.req.model, targets)
        for round_no in range(self.policy.max_attempts):
            for i, target in enumerate(targets):
                remaining = self._remaining(outcome)
                if last is not None and remaining is not None and remaining <= 0:
                    raise await self._give_up(last, targets)  # the request's deadline is up
                if not await health.allow(target.key):
                    continue
                if hedge is not None and round_no == 0 and i + 1 < len(targets):
                    try:
                        return await self._hedged(target, targets[i + 1], hedge, tier,
                                                  outcome, fn, streaming)
                    except ThriftyError as exc:
                        if classify(exc) is ErrorClass.CLIENT or not exc.retryable:
                            raise
                        last = exc
                        break  # both raced deployments failed: next round
                try:
                    return await self._one(target, tier, outcome, fn, streaming, remaining)
                except ThriftyError as exc:
                    if classify(exc) is ErrorClass.CLIENT or not exc.retryable:
                        raise
                    last = exc
            if last is None:
                raise await self._all_down(targets)
            delay = next_delay(round_no, last, self._rng, self.policy,
                               self._remaining(outcome))
            if delay is None:
                break
            await asyncio.sleep(delay)
        assert last is not None
        raise await self._give_up(last, targets)

    async def _give_up(self, last: ThriftyError, targets: Sequence[Target]) -> ThriftyError:
        if last.retry_after is None:  # tell the client when the deployments may be back
            last.retry_after = (await self._all_down(targets)).retry_after
        return last

    def _by_headroom(self, targets: Sequence[Target], outcome: Outcome) -> Sequence[Target]:
        """Deployments whose rate-limit headroom is spent go last, so traffic moves away
        before they start answering 429."""
        if not self._headroom:
            return targets
        now = self._gw.clock.now()
        tokens = estimate_prompt_tokens(outcome.req.body)
        spent = [t for t in targets if (h := self._headroom.get(t.key)) is not None
                 and should_avoid(h, now, tokens)]
        if not spent:
            return targets
        return [t for t in targets if t not in spent] + spent

    async def once(self, target: Target, tier: int, outcome: Outcome,
                   fn: Attempt[T]) -> tuple[T, Call]:
        """A single health-aware attempt (a cascade tier's call): no retry, no failover."""
        if not await self.health.allow(target.key):
            raise await self._all_down([target])
        return await self._one(target, tier, outcome, fn, False)

    def _hedge_delay(self, model: str, targets: Sequence[Target]) -> float | None:
        """Seconds to wait before racing a second deployment, or None (no hedging)."""
        if len(targets) < 2:
            return None
        fixed = self._cfg.hedge_after_ms
        if fixed is None and not self._hedged_routes:  # nothing hedges: the usual case
            return None
        route = self._gw.routes.resolve(model) if model in self._gw.routes else None
        if route is not None and route.hedge:
            p95 = self._gw.stats.p95_ttft_ms(targets[0].key)
            if p95 is not None:
                return p95 / 1000
        return fixed / 1000 if fixed is not None else None

    async def _hedged(self, first: Target, second: Target, delay: float, tier: int,
                      outcome: Outcome, fn: Attempt[T], streaming: bool) -> tuple[T, Call]:
        """Start ``first``; if it has not answered after ``delay``, race ``second``. The
        first success wins and the other is cancelled; both calls stay on the bill."""
        a = asyncio.ensure_future(self._one(first, tier, outcome, fn, streaming))
        done, _ = await asyncio.wait({a}, timeout=delay)
        if done:
            return a.result()
        b = asyncio.ensure_future(self._one(second, tier, outcome, fn, streaming))
        pending = {a, b}
        error: BaseException | None = None
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            winners = [t for t in done if t.exception() is None]
            if winners:
                for loser in pending:
                    loser.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                for late in winners[1:]:  # both answered at once: keep one, close the other
                    result, call = late.result()
                    getattr(result, "close", lambda: None)()
                    call.verdict = "hedge: lost the race"
                for c in outcome.calls:
                    if c.error_code == "cancelled" and c.verdict is None:
                        c.verdict = "hedge: lost the race"
                return winners[0].result()
            error = next(iter(done)).exception()
        assert error is not None
        raise error

    async def _one(self, target: Target, tier: int, outcome: Outcome, fn: Attempt[T],
                   streaming: bool, budget_s: float | None = None) -> tuple[T, Call]:
        """One attempt, its outcome told to the health store (and its rate-limit headers
        read), within what is left of the request's deadline."""
        try:
            result, call = await self._gw.attempt(target, tier, outcome, fn,
                                                  streaming=streaming, budget_s=budget_s)
        except ThriftyError as exc:
            await self._record_failure(target, exc)
            raise
        await self.health.record_success(target.key)
        headers = getattr(result, "headers", None)
        if headers:
            room = parse_headroom(headers, self._gw.clock.now())
            if room is not None:
                self._headroom[target.key] = room
                await self.health.record_headroom(target.key, room)
        return result, call

    async def _record_failure(self, target: Target, exc: ThriftyError) -> None:
        cls = classify(exc)
        if cls is ErrorClass.CLIENT:  # the deployment answered: it is up
            if exc.provider is not None:
                await self.health.record_success(target.key)
            return
        await self.health.record_failure(target.key, cls, exc.retry_after)

    async def _all_down(self, targets: Sequence[Target]) -> ThriftyError:
        snap = await self.health.snapshot()
        waits = [snap[t.key].cooldown_remaining_s for t in targets if t.key in snap]
        retry = max(1.0, min(waits)) if waits else 1.0
        names = ", ".join(t.key for t in targets)
        return UpstreamUnavailable(f"every deployment is cooling down after failures ({names})",
                                   provider=targets[0].provider, retry_after=retry)

    def _remaining(self, outcome: Outcome) -> float | None:
        total = outcome.req.options.timeout_s or self._gw.deadlines.total_s
        elapsed = self._gw.clock.now() - outcome.started
        return max(0.0, total - elapsed)
