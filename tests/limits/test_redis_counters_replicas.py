"""RedisCounters shared by two instances standing for two gateway replicas, on the real Redis
at 127.0.0.1:6379: hundreds of concurrent reservations against one budget never overspend
it, never refuse one that fitted, and settle to the exact sum; a requests-per-minute limit
is not doubled by two replicas. Skipped only when nothing listens on the port."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as redis_asyncio
from tests.services import listening

from thrifty.limits.model import Limit, ReserveResult
from thrifty.limits.redis_counters import RedisCounters

if TYPE_CHECKING:
    from redis.asyncio import Redis

URL = "redis://127.0.0.1:6379/0"
NOW = 1_700_000_000.0



pytestmark = pytest.mark.skipif(
    not listening(6379),
    reason="nothing listens on 127.0.0.1:6379; start Redis: redis-server --daemonize yes "
           "--bind 127.0.0.1 --port 6379 --save '' --appendonly no",
)

BUDGET = Limit("usd", "day", "team", "research", 60_000_000)  # nano-USD
GENEROUS_RPM = Limit("requests", "minute", "global", None, 10_000)


@dataclass
class Replicas:
    a: RedisCounters
    b: RedisCounters
    raw: Redis
    prefix: str

    def pick(self, i: int) -> RedisCounters:
        return self.a if i % 2 == 0 else self.b


@pytest.fixture
async def rs() -> AsyncIterator[Replicas]:
    prefix = f"thrifty:test:{uuid.uuid4().hex}:"
    # a generous timeout: 500 scripts queued at once must not time out under a loaded run
    a = RedisCounters(URL, prefix=prefix, timeout_s=10.0)
    b = RedisCounters(URL, prefix=prefix, timeout_s=10.0)
    raw = redis_asyncio.from_url(URL, decode_responses=True)
    try:
        yield Replicas(a, b, raw, prefix)
    finally:
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*")]
        if keys:
            await raw.delete(*keys)
        for client in (a, b, raw):
            await client.aclose()


async def test_500_concurrent_reservations_are_exact_across_two_replicas(rs: Replicas) -> None:
    rng = random.Random(2024)
    # a mix of small and large holds summing to ~2.5x the budget
    amounts = [rng.choice([rng.randint(1, 50_000), rng.randint(100_000, 1_000_000)])
               for _ in range(500)]
    assert sum(amounts) > 2 * BUDGET.amount

    async def one(i: int) -> tuple[ReserveResult, int]:
        got, seen = await rs.pick(i).reserve_with_used(
            f"r{i}", [(BUDGET, amounts[i]), (GENEROUS_RPM, 1)], NOW)
        return got, seen[BUDGET.id]

    outcomes = await asyncio.gather(*(one(i) for i in range(500)))
    held = [(seen, amounts[i]) for i, (got, seen) in enumerate(outcomes) if got.ok]
    refused = [(seen, amounts[i]) for i, (got, seen) in enumerate(outcomes) if not got.ok]
    assert 50 < len(held) < 450 and refused  # the budget allowed only part of them
    total_held = sum(amount for _, amount in held)
    assert total_held <= BUDGET.amount
    assert await _budget_usage(rs.a) == (0, total_held)

    # What each script saw forms one serial history: ordered by what they saw, every
    # successful hold starts exactly where the previous one ended ...
    levels = [0]
    for seen, amount in sorted(held):
        assert seen == levels[-1]
        levels.append(seen + amount)
    # ... and every refusal saw one of those states, in which it really did not fit
    for seen, amount in refused:
        assert seen in levels
        assert seen + amount > BUDGET.amount
    for (got, _), amount in zip(outcomes, amounts, strict=True):
        if not got.ok:
            assert got.refusal is not None and got.refusal.requested == amount

    actual = {i: rng.randint(0, amounts[i]) for i, (got, _) in enumerate(outcomes) if got.ok}
    await asyncio.gather(*(rs.pick(i + 1).settle(f"r{i}", {BUDGET.id: spent})
                           for i, spent in actual.items()))
    await asyncio.gather(*(rs.pick(i).settle(f"r{i}", {BUDGET.id: 1}) for i in actual))
    assert await _budget_usage(rs.b) == (sum(actual.values()), 0)
    assert await rs.raw.exists(rs.a.index_key) == 0  # every reservation closed


async def test_interleaved_reserve_settle_release_stays_exact(rs: Replicas) -> None:
    """Reservations, settles and releases racing each other through both replicas."""
    rng = random.Random(99)
    plans = [(rng.randint(1, 2_000_000), rng.random()) for _ in range(500)]
    spent: dict[int, int] = {}
    violations: list[str] = []
    refusals = 0

    async def request(i: int) -> None:
        amount, fate = plans[i]
        got, seen = await rs.pick(i).reserve_with_used(f"r{i}", [(BUDGET, amount)], NOW)
        if not got.ok:
            nonlocal refusals
            refusals += 1
            if seen[BUDGET.id] + amount <= BUDGET.amount:
                violations.append(f"r{i} refused though {seen} + {amount} fitted")
            return
        await asyncio.sleep(0)  # let others run between reserve and settle
        if fate < 0.2:
            await rs.pick(i + 1).release(f"r{i}")
        else:
            spent[i] = rng.randint(0, amount)
            await rs.pick(i + 1).settle(f"r{i}", {BUDGET.id: spent[i]})

    await asyncio.gather(*(request(i) for i in range(500)))
    assert violations == []
    assert refusals > 100 and len(spent) > 20  # the budget was contended
    settled, reserved = await _budget_usage(rs.a)
    assert (settled, reserved) == (sum(spent.values()), 0)
    assert settled <= BUDGET.amount


async def test_requests_per_minute_is_shared_not_doubled(rs: Replicas) -> None:
    rpm = Limit("requests", "minute", "key", "k1", 50)

    async def call(i: int, now: float) -> bool:
        return (await rs.pick(i).reserve(f"q{now}:{i}", [(rpm, 1)], now)).ok

    first = await asyncio.gather(*(call(i, NOW) for i in range(200)))
    assert sum(first) == 50
    assert sum(first[0::2]) > 0 and sum(first[1::2]) > 0  # both replicas took some
    # finished requests still count for the minute; released ones give their room back
    granted = [i for i, ok in enumerate(first) if ok]
    await asyncio.gather(*(rs.pick(i).settle(f"q{NOW}:{i}", {}) for i in granted[:40]))
    await asyncio.gather(*(rs.pick(i).release(f"q{NOW}:{i}") for i in granted[40:]))
    again = await asyncio.gather(*(call(i, NOW + 1) for i in range(200, 300)))
    assert sum(again) == 10
    next_minute = await asyncio.gather(*(call(i, NOW + 60) for i in range(300, 400)))
    assert sum(next_minute) == 50
    assert [(s, r) for _, s, r in await rs.b.usage([rpm], NOW)] == [(40, 10)]


async def _budget_usage(c: RedisCounters) -> tuple[int, int]:
    [(_, settled, reserved)] = await c.usage([BUDGET], NOW)
    return settled, reserved
