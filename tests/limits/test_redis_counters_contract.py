"""RedisCounters against the real Redis on 127.0.0.1:6379: the Counters contract (all or
nothing, refusals, soft warnings, roll-over, idempotency, expiry, TTLs), and a random replay
through both RedisCounters and MemoryCounters that must agree step for step. Each test uses
its own key prefix and deletes its keys. Skipped only when nothing listens on the port."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as redis_asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from tests.services import free_port, listening

from thrifty.limits.memory import MemoryCounters
from thrifty.limits.model import Limit, window_bounds
from thrifty.limits.redis_counters import RECLAIM_BATCH, RedisCounters

if TYPE_CHECKING:
    from redis.asyncio import Redis

URL = "redis://127.0.0.1:6379/0"
NOW = 1_700_000_000.0  # 20 s into a minute, 6,400 s before the end of a UTC day
TTL_S = 600.0



pytestmark = pytest.mark.skipif(
    not listening(6379),
    reason="nothing listens on 127.0.0.1:6379; start Redis: redis-server --daemonize yes "
           "--bind 127.0.0.1 --port 6379 --save '' --appendonly no",
)

USD_DAY = Limit("usd", "day", "team", "research", 1_000, soft_ratio=0.8)
TOKENS_MIN = Limit("input_tokens", "minute", "key", "k1", 500)
RPM = Limit("requests", "minute", "global", None, 3)
USD_TOTAL = Limit("usd", "total", "key", "k1", 10_000)


@dataclass
class Env:
    c: RedisCounters
    raw: Redis
    prefix: str


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    prefix = f"thrifty:test:{uuid.uuid4().hex}:"
    c = RedisCounters(URL, prefix=prefix, reservation_ttl_s=TTL_S, timeout_s=5.0)
    raw = redis_asyncio.from_url(URL, decode_responses=True)
    try:
        yield Env(c, raw, prefix)
    finally:
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*")]
        if keys:
            await raw.delete(*keys)
        await c.aclose()
        await raw.aclose()


async def _reserved(c: RedisCounters, limits: list[Limit], now: float = NOW) -> list[int]:
    return [reserved for _, _, reserved in await c.usage(limits, now)]


async def test_all_or_nothing_across_three_limits(env: Env) -> None:
    three = [USD_DAY, TOKENS_MIN, RPM]
    assert (await env.c.reserve("r0", [(USD_DAY, 100), (TOKENS_MIN, 450), (RPM, 1)], NOW)).ok
    # the third limit has room, the second does not: nothing at all may be taken
    got = await env.c.reserve("r1", [(USD_DAY, 100), (TOKENS_MIN, 51), (RPM, 1)], NOW)
    assert not got.ok and got.holds == () and got.warnings == ()
    assert got.refusal is not None
    assert got.refusal.limit == TOKENS_MIN
    assert (got.refusal.used, got.refusal.requested) == (450, 51)
    assert got.refusal.retry_after_s == pytest.approx(40.0)  # the rest of the minute
    assert await _reserved(env.c, three) == [100, 450, 1]
    assert await env.raw.exists(env.c.reservation_key("r1")) == 0
    # exactly filling every limit fits
    got = await env.c.reserve("r2", [(USD_DAY, 900), (TOKENS_MIN, 50), (RPM, 2)], NOW)
    assert got.ok and [h.amount for h in got.holds] == [900, 50, 2]
    assert await _reserved(env.c, three) == [1_000, 500, 3]


async def test_refusal_names_the_first_limit_without_room(env: Env) -> None:
    assert (await env.c.reserve("r0", [(USD_DAY, 1_000), (RPM, 3)], NOW)).ok
    got = await env.c.reserve("r1", [(TOKENS_MIN, 1), (RPM, 1), (USD_DAY, 1)], NOW)
    assert got.refusal is not None and got.refusal.limit == RPM
    assert (await env.c.reserve("r2", [(USD_TOTAL, 10_001)], NOW)).refusal == \
        (await env.c.reserve("r3", [(USD_TOTAL, 10_001)], NOW + 86_400 * 400)).refusal
    total = await env.c.reserve("r4", [(USD_TOTAL, 10_001)], NOW)
    assert total.refusal is not None and total.refusal.retry_after_s is None


async def test_reserve_reports_what_it_saw(env: Env) -> None:
    _, seen = await env.c.reserve_with_used("r0", [(USD_DAY, 300), (RPM, 1)], NOW)
    assert seen == {USD_DAY.id: 0, RPM.id: 0}
    got, seen = await env.c.reserve_with_used("r1", [(USD_DAY, 800), (RPM, 1)], NOW)
    assert not got.ok and seen == {USD_DAY.id: 300, RPM.id: 1}


async def test_soft_limit_warns_only_above_its_share(env: Env) -> None:
    first = await env.c.reserve("r0", [(USD_DAY, 800), (RPM, 1)], NOW)  # 800 > 0.8 x 1000? no
    assert first.ok and first.warnings == ()
    second = await env.c.reserve("r1", [(USD_DAY, 1), (RPM, 1)], NOW)
    assert second.ok and second.warnings == (USD_DAY,)
    refused = await env.c.reserve("r2", [(USD_DAY, 500)], NOW)
    assert not refused.ok and refused.warnings == ()


async def test_settle_lands_in_the_bucket_it_was_taken_from(env: Env) -> None:
    got = await env.c.reserve("r0", [(TOKENS_MIN, 400), (USD_DAY, 50)], NOW)
    old_start = got.holds[0].window_start
    later = NOW + 60  # the minute rolled over, the day did not
    assert window_bounds("minute", later)[0] != old_start
    await env.c.settle("r0", {TOKENS_MIN.id: 380, USD_DAY.id: 45})
    assert [(s, r) for _, s, r in await env.c.usage([TOKENS_MIN, USD_DAY], later)] == \
        [(0, 0), (45, 0)]
    assert [(s, r) for _, s, r in await env.c.usage([TOKENS_MIN], NOW)] == [(380, 0)]
    old = await env.raw.hgetall(env.c.bucket_key(TOKENS_MIN, old_start))
    assert old == {"settled": "380", "reserved": "0"}


async def test_settle_and_release_are_idempotent(env: Env) -> None:
    await env.c.reserve("r0", [(USD_DAY, 100), (RPM, 1)], NOW)
    await env.c.settle("r0", {USD_DAY.id: 70})  # RPM not named: settles the held 1
    await env.c.settle("r0", {USD_DAY.id: 70})
    await env.c.release("r0")
    assert [(s, r) for _, s, r in await env.c.usage([USD_DAY, RPM], NOW)] == [(70, 0), (1, 0)]
    await env.c.reserve("r1", [(USD_DAY, 100)], NOW)
    await env.c.release("r1")
    await env.c.settle("r1", {USD_DAY.id: 100})
    await env.c.release("r1")
    await env.c.settle("never-reserved", {USD_DAY.id: 5})
    assert [(s, r) for _, s, r in await env.c.usage([USD_DAY], NOW)] == [(70, 0)]
    assert await env.raw.exists(env.c.index_key) == 0  # nothing open, nothing left behind


async def test_settle_records_more_than_was_held(env: Env) -> None:
    await env.c.reserve("r0", [(USD_DAY, 100)], NOW)
    await env.c.settle("r0", {USD_DAY.id: 130})
    assert [(s, r) for _, s, r in await env.c.usage([USD_DAY], NOW)] == [(130, 0)]


async def test_an_open_id_cannot_be_reused_until_closed(env: Env) -> None:
    await env.c.reserve("r0", [(USD_DAY, 100)], NOW)
    with pytest.raises(ValueError, match="already in use"):
        await env.c.reserve("r0", [(USD_DAY, 100)], NOW)
    assert await _reserved(env.c, [USD_DAY]) == [100]
    await env.c.release("r0")
    assert (await env.c.reserve("r0", [(USD_DAY, 100)], NOW)).ok


async def test_expired_reservations_are_reclaimed_inside_reserve(env: Env) -> None:
    assert (await env.c.reserve("crashed", [(USD_DAY, 1_000), (USD_TOTAL, 10)], NOW)).ok
    assert not (await env.c.reserve("r1", [(USD_DAY, 1)], NOW + TTL_S - 1)).ok
    assert (await env.c.reserve("r2", [(USD_DAY, 1)], NOW + TTL_S)).ok
    assert await _reserved(env.c, [USD_DAY, USD_TOTAL], NOW + TTL_S) == [1, 0]
    assert await env.raw.zrange(env.c.index_key, 0, -1) == ["r2"]
    # the crashed process comes back late: its spend is recorded, its room not freed twice
    await env.c.settle("crashed", {USD_DAY.id: 600, USD_TOTAL.id: 7})
    assert [(s, r) for _, s, r in await env.c.usage([USD_DAY, USD_TOTAL], NOW + TTL_S)] == \
        [(600, 1), (7, 0)]
    await env.c.settle("crashed", {USD_DAY.id: 600})
    assert [(s, r) for _, s, r in await env.c.usage([USD_DAY], NOW + TTL_S)] == [(600, 1)]


async def test_expired_release_frees_nothing_twice_and_usage_reclaims(env: Env) -> None:
    await env.c.reserve("crashed", [(RPM, 2)], NOW)
    assert await _reserved(env.c, [RPM], NOW + 10) == [2]
    assert await _reserved(env.c, [RPM], NOW + TTL_S) == [0]  # same minute bucket read
    tomb = env.c.reservation_key("crashed")
    assert await env.raw.hget(tomb, "state") == "expired"
    assert 0 < await env.raw.pttl(tomb) <= (TTL_S + 60) * 1000
    await env.c.release("crashed")
    assert await _reserved(env.c, [RPM]) == [0]
    assert await env.raw.exists(tomb) == 0


async def test_thousands_of_expired_holds_are_freed_in_batches(env: Env) -> None:
    """More expired reservations than one script frees: none is refused meanwhile."""
    n = 2 * RECLAIM_BATCH + 50
    full = Limit("requests", "day", "key", "crashy", n)
    oks = await asyncio.gather(*(env.c.reserve(f"c{i}", [(full, 1)], NOW) for i in range(n)))
    assert all(got.ok for got in oks)
    later = NOW + TTL_S
    assert (await env.c.reserve("all", [(full, n)], later)).ok  # needs every hold freed
    assert await env.raw.zrange(env.c.index_key, 0, -1) == ["all"]
    await env.c.release("all")
    await asyncio.gather(*(env.c.reserve(f"d{i}", [(full, 1)], later) for i in range(n)))
    assert await _reserved(env.c, [full], later + TTL_S) == [0]
    assert await env.raw.exists(env.c.index_key) == 0


async def test_every_key_carries_a_ttl_but_a_total_budget(env: Env) -> None:
    month = Limit("usd", "month", "global", None, 10**12)
    hour = Limit("output_tokens", "hour", "model", "gpt-x", 10**6)
    wants = [(USD_DAY, 10), (TOKENS_MIN, 10), (RPM, 1), (month, 10), (hour, 10)]
    await env.c.reserve("r0", wants, NOW)
    await env.c.reserve("r1", [(USD_TOTAL, 10)], NOW)
    keys = {k async for k in env.raw.scan_iter(match=f"{env.prefix}*")}
    total_key = env.c.bucket_key(USD_TOTAL, 0.0)
    assert len(keys) == 6 + 3  # six buckets, two reservations, the index
    for key in keys - {total_key}:
        assert await env.raw.pttl(key) > 0, key
    assert await env.raw.pttl(total_key) == -1  # a lifetime budget must never be forgotten
    minute_ttl = await env.raw.pttl(env.c.bucket_key(TOKENS_MIN, NOW - 20))
    assert (40 + TTL_S) * 1000 < minute_ttl <= (40 + TTL_S + 60) * 1000
    day_ttl = await env.raw.pttl(env.c.bucket_key(USD_DAY, window_bounds("day", NOW)[0]))
    assert (6_400 + TTL_S) * 1000 < day_ttl <= (6_400 + TTL_S + 60) * 1000
    # a reservation outlives every bucket it holds, the index every reservation
    month_ttl = await env.raw.pttl(env.c.bucket_key(month, window_bounds("month", NOW)[0]))
    r0_ttl = await env.raw.pttl(env.c.reservation_key("r0"))
    r1_ttl = await env.raw.pttl(env.c.reservation_key("r1"))
    assert r0_ttl >= month_ttl - 1_000
    assert r1_ttl >= 29 * 86_400_000
    assert await env.raw.pttl(env.c.index_key) >= max(r0_ttl, r1_ttl) - 1_000


async def test_exact_with_amounts_near_two_to_the_53(env: Env) -> None:
    big = Limit("usd", "day", "global", None, 2**53 - 1)
    assert (await env.c.reserve("r0", [(big, 2**53 - 2)], NOW)).ok
    assert (await env.c.reserve("r1", [(big, 1)], NOW)).ok
    refused = await env.c.reserve("r2", [(big, 1)], NOW)
    assert refused.refusal is not None and refused.refusal.used == 2**53 - 1
    await env.c.settle("r0", {big.id: 2**53 - 3})
    assert [(s, r) for _, s, r in await env.c.usage([big], NOW)] == [(2**53 - 3, 1)]


async def test_zero_amounts_and_merged_wants(env: Env) -> None:
    got = await env.c.reserve("r0", [(USD_DAY, 0), (RPM, 1), (RPM, 1)], NOW)
    assert got.ok and [(h.limit, h.amount) for h in got.holds] == [(USD_DAY, 0), (RPM, 2)]
    await env.c.settle("r0", {USD_DAY.id: 0, RPM.id: 0})
    await env.c.reserve("r1", [(USD_DAY, 0)], NOW)
    await env.c.release("r1")
    assert [(s, r) for _, s, r in await env.c.usage([USD_DAY, RPM], NOW)] == [(0, 0), (0, 0)]


async def test_nothing_wanted_records_nothing(env: Env) -> None:
    got = await env.c.reserve("e", [], NOW)
    assert got.ok and got.holds == () and got.refusal is None
    assert [k async for k in env.raw.scan_iter(match=f"{env.prefix}*")] == []


@pytest.mark.parametrize("amount", [-1, 1.5, True, 2**53])
async def test_bad_amounts_are_refused_before_any_write(env: Env, amount: int) -> None:
    with pytest.raises(ValueError):
        await env.c.reserve("r0", [(USD_DAY, amount)], NOW)
    await env.c.reserve("r1", [(USD_DAY, 5)], NOW)
    with pytest.raises(ValueError):
        await env.c.settle("r1", {USD_DAY.id: amount})
    assert await _reserved(env.c, [USD_DAY]) == [5]
    assert await env.raw.exists(env.c.reservation_key("r0")) == 0


async def test_ping_and_errors_when_redis_is_unreachable(env: Env) -> None:
    assert await env.c.ping()
    port = free_port()  # nothing listens there
    dead = RedisCounters(f"redis://127.0.0.1:{port}/0", prefix=env.prefix, timeout_s=0.5)
    try:
        assert not await dead.ping()
        with pytest.raises((RedisConnectionError, OSError)):
            await dead.reserve("r0", [(USD_DAY, 1)], NOW)
    finally:
        await dead.aclose()


async def test_agrees_with_memory_counters_step_for_step(env: Env) -> None:
    """A random history of reserves, settles, releases, usage reads and clock moves (past
    window ends and reservation expiries) gives the same results in both back ends."""
    rng = random.Random(7)
    memory = MemoryCounters(ttl_s=TTL_S)
    limits = [USD_DAY, TOKENS_MIN, RPM, USD_TOTAL,
              Limit("output_tokens", "hour", "model", "m", 3_000, soft_ratio=0.5)]
    now, open_ids = NOW, []
    for step in range(400):
        now += rng.choice([0, 0, 1, 7, 30, 90])
        roll = rng.random()
        if roll < 0.5:
            wants = [(lim, rng.randint(0, lim.amount // 3)) for lim in rng.sample(limits, 3)]
            rid = f"r{step}"
            got = await env.c.reserve(rid, wants, now)
            assert got == await memory.reserve(rid, wants, now), step
            if got.ok:
                open_ids.append(rid)
        elif open_ids and roll < 0.9:
            rid = open_ids.pop(rng.randrange(len(open_ids)))
            if roll < 0.75:
                actual = {lim.id: rng.randint(0, lim.amount // 3) for lim in limits}
                await env.c.settle(rid, actual)
                await memory.settle(rid, actual)
            else:
                await env.c.release(rid)
                await memory.release(rid)
        assert await env.c.usage(limits, now) == await memory.usage(limits, now), step
