"""Random reserve / settle / release / advance-time sequences against a plain reference model,
run on MemoryCounters and SQLiteCounters. After every step: (1) settled + reserved never
exceeds a budget (except by what expired reservations settled late), (2) a reserve is refused
exactly when some limit lacks room, (3) settle / release are idempotent, (4) expired
reservations free their room, (5) windows roll over to fresh buckets while late settles land
in the bucket they were taken from."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thrifty.core.clock import FakeClock
from thrifty.limits.memory import MemoryCounters
from thrifty.limits.model import Hold, Limit, Refusal, ReserveResult, window_bounds
from thrifty.limits.sqlite_counters import SQLiteCounters

LIMITS = (
    Limit("requests", "minute", "global", None, 4),
    Limit("usd", "hour", "key", "k1", 1_000, soft_ratio=0.5),
    Limit("input_tokens", "day", "team", "t", 2_500),
    Limit("output_tokens", "month", "global", None, 3_000, soft_ratio=0.9),
    Limit("usd", "total", "global", None, 4_000),
)
START = 1_706_744_400.0  # 2024-01-31T23:40:00Z: minutes, hours, the day and the month roll soon
TTL_S = 300.0
RETAIN_S = 1e9  # nothing is forgotten within a run (forgetting has its own test)
Bucket = tuple[str, float]


@dataclass
class _Open:
    holds: list[tuple[Limit, int, float]]
    expires_at: float


@dataclass
class Reference:
    """The contract, written as plainly as possible: reserved room is recomputed from the
    open reservations every time instead of being kept as running totals."""

    settled: dict[Bucket, int] = field(default_factory=lambda: defaultdict(int))
    open: dict[str, _Open] = field(default_factory=dict)
    late: dict[Bucket, int] = field(default_factory=lambda: defaultdict(int))
    """What reservations settled after they had expired (their room was already free)."""

    def reserved(self, bucket: Bucket, now: float) -> int:
        return sum(amount for res in self.open.values() if res.expires_at > now
                   for limit, amount, start in res.holds if (limit.id, start) == bucket)

    def used(self, limit: Limit, now: float) -> int:
        bucket = (limit.id, window_bounds(limit.window, now)[0])
        return self.settled[bucket] + self.reserved(bucket, now)

    def reserve(self, rid: str, wants: list[tuple[Limit, int]], now: float) -> ReserveResult | None:
        if rid in self.open:
            return None  # the id is in use: reserve raises ValueError
        merged: dict[Limit, int] = {}
        for limit, amount in wants:
            merged[limit] = merged.get(limit, 0) + amount
        warnings = []
        for limit, amount in merged.items():
            used = self.used(limit, now)
            if used + amount > limit.amount:
                end = window_bounds(limit.window, now)[1]
                retry = None if limit.window == "total" else end - now
                return ReserveResult(False, (), Refusal(limit, used, amount, retry), ())
            soft = limit.soft_ratio
            if soft is not None and used + amount > Fraction(soft) * limit.amount:
                warnings.append(limit)
        holds = [(lim, amt, window_bounds(lim.window, now)[0]) for lim, amt in merged.items()]
        if holds:
            self.open[rid] = _Open(holds, now + TTL_S)
        return ReserveResult(True, tuple(Hold(*h) for h in holds), None, tuple(warnings))

    def settle(self, rid: str, actual: Mapping[str, int], now: float) -> None:
        res = self.open.pop(rid, None)
        for limit, held, start in res.holds if res else ():
            amount = actual.get(limit.id, held)
            self.settled[(limit.id, start)] += amount
            if res is not None and res.expires_at <= now:
                self.late[(limit.id, start)] += amount

    def release(self, rid: str) -> None:
        self.open.pop(rid, None)


rids = st.sampled_from([f"r{i}" for i in range(4)])
# Mostly small amounts, so budgets last long enough for windows to roll; some big ones.
amounts = st.one_of(st.integers(0, 60), st.integers(0, 700))
_OPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "reserve": st.tuples(st.just("reserve"), rids,
                         st.lists(st.tuples(st.sampled_from(LIMITS), amounts), max_size=3)),
    # Quarters of what was held, per hold; ``None`` leaves the limit out (settles as held).
    "settle": st.tuples(st.just("settle"), rids,
                        st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=5,
                                 max_size=5)),
    "release": st.tuples(st.just("release"), rids),
    "advance": st.tuples(st.just("advance"),
                         st.sampled_from([1, 20, 45, 61, 299, 301, 1_800, 3_600, 86_400])),
}
# Reserve most, settle often, so several reservations are open across window roll-overs.
_MIX = ["reserve"] * 4 + ["settle"] * 3 + ["release", "advance", "advance"]
ops = st.lists(st.sampled_from(_MIX).flatmap(_OPS.__getitem__), min_size=20, max_size=60)


async def _run(counters: Any, steps: list[tuple[Any, ...]]) -> None:
    clock = FakeClock(START)
    ref = Reference()
    for step in steps:
        now = clock.now()
        if step[0] == "reserve":
            expected = ref.reserve(step[1], step[2], now)
            if expected is None:
                with pytest.raises(ValueError, match="already in use"):
                    await counters.reserve(step[1], step[2], now)
            else:
                assert await counters.reserve(step[1], step[2], now) == expected  # (2)
        elif step[0] == "settle":
            actual = _actual(ref, step[1], step[2])
            ref.settle(step[1], actual, now)
            await counters.settle(step[1], actual)
        elif step[0] == "release":
            ref.release(step[1])
            await counters.release(step[1])
        else:
            clock.advance(step[1])
        await _check(counters, ref, clock.now(), earlier_windows=step[0] == "settle")


def _actual(ref: Reference, rid: str, shares: list[int | None]) -> dict[str, int]:
    """At most what was held, per limit; limits left out settle as held."""
    res = ref.open.get(rid)
    holds = res.holds if res else [(limit, 400, 0.0) for limit in LIMITS]
    return {limit.id: held * share // 4
            for (limit, held, _), share in zip(holds, shares, strict=False) if share is not None}


async def _check(counters: Any, ref: Reference, now: float, *, earlier_windows: bool) -> None:
    for limit, settled, reserved in await counters.usage(LIMITS, now):
        bucket = (limit.id, window_bounds(limit.window, now)[0])
        assert (settled, reserved) == (ref.settled[bucket], ref.reserved(bucket, now))  # (3)(4)
        assert settled + reserved <= limit.amount + ref.late[bucket]  # (1)
    if not earlier_windows:
        return  # only a settle changes an earlier window
    by_id = {limit.id: limit for limit in LIMITS}
    for (limit_id, start), settled in list(ref.settled.items()):  # (5): earlier windows
        [(_, got, _)] = await counters.usage([by_id[limit_id]], start)
        assert got == settled


def _property(make: Callable[[], Any]) -> Callable[[list[tuple[Any, ...]]], None]:
    def run(steps: list[tuple[Any, ...]]) -> None:
        counters = make()
        try:
            asyncio.run(_run(counters, steps))
        finally:
            getattr(counters, "close", lambda: None)()
    return run


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=ops)
def test_memory_counters_follow_the_reference(steps: list[tuple[Any, ...]]) -> None:
    _property(lambda: MemoryCounters(ttl_s=TTL_S, retain_s=RETAIN_S))(steps)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=ops)
def test_sqlite_counters_follow_the_reference(steps: list[tuple[Any, ...]]) -> None:
    _property(lambda: SQLiteCounters(":memory:", ttl_s=TTL_S, retain_s=RETAIN_S))(steps)
