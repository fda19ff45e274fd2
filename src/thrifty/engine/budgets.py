"""Budgets and rate limits on the request path, by reservation: before calling upstream,
reserve the most the request can take from every limit it counts against (one request,
its estimated prompt, its maximum output, and the cost of all that at the priciest model
the plan may call); when it ends, settle to what it really used (or release: a failure
that spent nothing settles to zero). The counters make this exact under concurrency:
spend in a window never exceeds its budget, in-flight reservations included."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from thrifty.config.schema import LimitsConfig
from thrifty.core.clock import Clock
from thrifty.core.estimate import max_prompt_tokens
from thrifty.core.memo import IdentityMemo
from thrifty.core.usage import NO_USAGE
from thrifty.errors import BudgetExceeded, LimitsUnavailable, RateLimited
from thrifty.limits.decide import actual_for, wants_for
from thrifty.limits.model import Counters, Limit, Refusal, ReserveResult
from thrifty.limits.rules import LimitRule, RequestScope, applicable, parse_rules
from thrifty.pricing.cost import from_nano_usd
from thrifty.pricing.price import Price
from thrifty.routing.policy import Plan, Tier, single_tiers

if TYPE_CHECKING:
    from thrifty.engine.account import Outcome

log = logging.getLogger("thrifty.limits")
_SCOPES_CACHED = 4096
"""Distinct (key, team, model, provider, tags) whose matching limits are kept."""


def open_counters(cfg: LimitsConfig, ttl_s: float) -> Counters:
    """``ttl_s``: how long a hold outlives a crashed process; longer than any request."""
    if cfg.backend == "redis":
        from thrifty.limits.redis_counters import RedisCounters

        return RedisCounters(cfg.redis_url, prefix=cfg.redis_prefix, reservation_ttl_s=ttl_s)
    if cfg.backend == "sqlite":
        from thrifty.limits.sqlite_counters import SQLiteCounters

        return SQLiteCounters(cfg.path, ttl_s=ttl_s, retain_s=max(86_400.0, ttl_s))
    from thrifty.limits.memory import MemoryCounters

    return MemoryCounters(ttl_s=ttl_s, retain_s=max(86_400.0, ttl_s))


def _store_errors() -> tuple[type[BaseException], ...]:
    """What the counter back ends raise when their store fails (not a programming error)."""
    import sqlite3

    errors: tuple[type[BaseException], ...] = (OSError, sqlite3.Error)
    try:
        from redis.exceptions import RedisError
    except ImportError:
        return errors
    return (*errors, RedisError)


def max_cost_nano(plan: Plan, input_tokens: int, max_output: int | None) -> int:
    """The most the plan can spend: a cascade may call every tier; a fallback chain bills
    only the attempt that answers (failed attempts are not billed), but a hedge may bill
    two, so the two priciest count."""
    costs = []
    for tier in plan.tiers:
        for target in tier.targets:
            info = target.info
            cap = info.max_output
            # min(max_output or cap, cap) without min(): builtins parse keywords slowly
            out = max_output if max_output and max_output < cap else cap
            costs.append(_nano_cost(info.price, input_tokens, out))
    if plan.mode == "cascade" or len(costs) <= 2:
        return sum(costs)
    return sum(sorted(costs, reverse=True)[:2])


def _ratios(price: Price) -> tuple[int, int, int]:
    """(input numerator, output numerator, common denominator) of nano-USD per token."""
    in_num, in_den = price.input.as_integer_ratio()
    out_num, out_den = price.output.as_integer_ratio()
    den = math.lcm(in_den, out_den)
    # USD per million tokens x 1000 = nano-USD per token
    return 1000 * in_num * (den // in_den), 1000 * out_num * (den // out_den), den


_RATIOS = IdentityMemo(_ratios)


def _nano_cost(price: Price, input_tokens: int, output_tokens: int) -> int:
    """``to_nano_usd((input_tokens x input + output_tokens x output) / 1e6)`` in exact
    integers (the Decimal version cost ~10 us a request), rounded half-up the same way."""
    in_num, out_num, den = _RATIOS(price)
    num = input_tokens * in_num + output_tokens * out_num
    if num < 0:  # a negative price: ROUND_HALF_UP rounds away from zero
        return -((-num * 2 + den) // (den * 2))
    return (num * 2 + den) // (den * 2)


class Budgets:
    def __init__(self, cfg: LimitsConfig, clock: Clock, request_timeout_s: float) -> None:
        self.rules: tuple[LimitRule, ...] = parse_rules(cfg.rules, where="limits.rules")
        self._cfg = cfg
        self.downgrade_at = cfg.downgrade_at
        """Share of a USD budget past which plans are made cheaper (None: never)."""
        self._ttl = request_timeout_s + 60.0
        self.counters: Counters | None = open_counters(cfg, self._ttl) if cfg.rules else None
        self._clock = clock
        self._settling: set[asyncio.Task[None]] = set()
        # scope -> its matching limits, and whether their ids are distinct (no merging)
        self._by_scope: dict[tuple[object, ...], tuple[tuple[Limit, ...], bool]] = {}

    def limits_for(self, outcome: Outcome, plan: Plan,
                   extra: Sequence[LimitRule] = ()) -> list[Limit]:
        return list(self._limits(outcome, plan, extra)[0])

    def _limits(self, outcome: Outcome, plan: Plan,
                extra: Sequence[LimitRule]) -> tuple[Sequence[Limit], bool]:
        """The request's limits, and whether their ids are known to be distinct."""
        if not self.rules and not extra:
            return (), True
        req = outcome.req
        provider = plan.tiers[0].targets[0].provider
        tags = req.options.tags
        if extra:  # a key's or a team's own budgets: not cached
            return applicable((*self.rules, *extra), RequestScope(
                key_id=req.key_id, team=req.team, model=req.model, provider=provider,
                tags=tags)), False
        # A plain tuple: building and hashing a RequestScope per request costs more.
        key = (req.key_id, req.team, req.model, provider, tags)
        hit = self._by_scope.get(key)
        if hit is None:  # the config's rules are fixed: match them once per scope
            if len(self._by_scope) >= _SCOPES_CACHED:
                self._by_scope.clear()
            scope = RequestScope(key_id=req.key_id, team=req.team, model=req.model,
                                 provider=provider, tags=tags)
            limits = tuple(applicable(self.rules, scope))
            hit = self._by_scope[key] = (limits, len({lim.id for lim in limits}) == len(limits))
        return hit

    async def reserve(self, outcome: Outcome, plan: Plan,
                      extra: Sequence[LimitRule] = ()) -> None:
        """Hold room in every applicable limit, or refuse the request (429)."""
        limits, distinct = self._limits(outcome, plan, extra)
        if not limits:
            return
        counters = self.counters
        if counters is None:  # only per-key budgets so far: open the configured back end
            self.counters = counters = open_counters(self._cfg, self._ttl)
        req = outcome.req
        tokens = max_prompt_tokens(req.body)  # an upper bound: settling can only lower it
        max_output = req.max_output_tokens  # a property reading the body: read it once
        wants = wants_for(limits, tokens, max_output or 0,
                          max_cost_nano(plan, tokens, max_output), distinct_ids=distinct)
        result: ReserveResult
        try:
            nowait = getattr(counters, "reserve_nowait", None)
            if nowait is not None:  # in-process counters: no coroutine to run
                result = nowait(req.request_id, wants, self._clock.now())
            else:
                result = await counters.reserve(req.request_id, wants, self._clock.now())
        except _store_errors() as exc:  # fail closed, but cleanly
            log.error("budget counters unavailable: %s", type(exc).__name__)
            raise LimitsUnavailable("the budget counters are unavailable; retry shortly",
                                    retry_after=1.0) from None
        if not result.ok:
            assert result.refusal is not None
            raise refusal_error(result.refusal)
        outcome.limits = list(limits)
        warnings = result.warnings  # usually none: skip building an empty list comprehension
        outcome.budget_warnings = [w.id for w in warnings] if warnings else []

    async def downgrade(self, outcome: Outcome, plan: Plan,
                        extra: Sequence[LimitRule] = ()) -> Plan:
        """The cheaper plan when a USD budget of this request is nearly spent."""
        threshold = self.downgrade_at
        if threshold is None or self.counters is None:
            return plan
        usd = [lim for lim in self.limits_for(outcome, plan, extra) if lim.resource == "usd"]
        if not usd:
            return plan
        usage = await self.counters.usage(usd, self._clock.now())
        fullest = max(usage, key=lambda u: (u[1] + u[2]) / max(u[0].amount, 1))
        share = (fullest[1] + fullest[2]) / max(fullest[0].amount, 1)
        if share < threshold:
            return plan
        return cheaper_plan(plan, f"budget {fullest[0].id} {share:.0%} used")

    def settle(self, outcome: Outcome, cost_nano: int) -> None:
        """Called once per request when it ends (from the ledger hand-off, which is sync)."""
        if not outcome.limits or self.counters is None:
            return
        actual = actual_for(outcome.limits, outcome.usage or NO_USAGE, cost_nano)
        nowait = getattr(self.counters, "settle_nowait", None)
        if nowait is not None:  # in-process counters: no task to schedule
            try:
                nowait(outcome.req.request_id, actual)
            except Exception as exc:  # as in _done: the hold expires on its own
                log.error("settling a reservation failed: %s", exc)
            return
        task = asyncio.get_running_loop().create_task(
            self.counters.settle(outcome.req.request_id, actual))
        self._settling.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # the reservation expires on its own; the budget is not leaked for long
            log.error("settling a reservation failed: %s", task.exception())

    async def close(self) -> None:
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
        aclose = getattr(self.counters, "aclose", None) or getattr(self.counters, "close", None)
        if aclose is not None:
            result = aclose()
            if asyncio.iscoroutine(result):
                await result


def cheaper_plan(plan: Plan, why: str) -> Plan:
    """A cascade without its final tier (its last cheap tier answers), or a fallback chain
    ordered by price."""
    from dataclasses import replace

    if plan.mode == "cascade" and len(plan.tiers) > 1:
        tiers = plan.tiers[:-1]
        last = tiers[-1]
        tiers = (*tiers[:-1], Tier(last.targets, ()))  # now the final tier: no checks
    else:
        targets = sorted(plan.tiers_targets(),
                         key=lambda t: (t.info.price.input + t.info.price.output))
        tiers = single_tiers(targets)
    return replace(plan, tiers=tiers, reason=f"{plan.reason}; downgraded: {why}")


def refusal_error(r: Refusal) -> RateLimited | BudgetExceeded:
    lim = r.limit
    if lim.resource == "usd":
        return BudgetExceeded(
            f"budget {lim.id} cannot cover this request: ${from_nano_usd(r.used):f} of "
            f"${from_nano_usd(lim.amount):f} used or held, the request may cost up to "
            f"${from_nano_usd(r.requested):f}", retry_after=r.retry_after_s)
    return RateLimited(
        f"limit {lim.id} reached: {r.used} of {lim.amount} {lim.resource} used in this "
        f"{lim.window}, the request needs {r.requested}", retry_after=r.retry_after_s)
