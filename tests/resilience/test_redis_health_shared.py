"""RedisHealth against the real Redis on 127.0.0.1:6379: two instances stand for two gateway
replicas sharing one FakeClock. Each test uses its own key prefix and deletes its keys.
Skipped only when nothing listens on the port."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as redis_asyncio

from tests.services import free_port, listening
from thrifty.core.clock import FakeClock
from thrifty.resilience.breaker import BreakerConfig, ErrorClass, Phase
from thrifty.resilience.headroom import Headroom
from thrifty.resilience.health import MemoryHealth
from thrifty.resilience.redis_health import RedisHealth

if TYPE_CHECKING:
    from redis.asyncio import Redis

URL = "redis://127.0.0.1:6379/0"



pytestmark = pytest.mark.skipif(
    not listening(6379),
    reason="nothing listens on 127.0.0.1:6379; start Redis: redis-server --daemonize yes "
           "--bind 127.0.0.1 --port 6379 --save '' --appendonly no",
)

CFG = BreakerConfig(failure_threshold=3, half_open_probes=3, base_cooldown_s=5,
                    cooldown_growth=2, max_cooldown_s=60, window_s=30, min_requests=100)
KEY = "openai/gpt-4o-mini"


@dataclass
class Replicas:
    a: RedisHealth
    b: RedisHealth
    clock: FakeClock
    raw: Redis
    prefix: str


async def _replicas(cfg: BreakerConfig) -> AsyncIterator[Replicas]:
    prefix = f"thrifty:test:{uuid.uuid4().hex}:"
    clock = FakeClock()
    # a generous timeout: under a loaded test run, a slow round trip must not switch the
    # replicas to their per-process fallback (that is tested separately below)
    a = RedisHealth(URL, cfg, clock, prefix, timeout_s=5.0)
    b = RedisHealth(URL, cfg, clock, prefix, timeout_s=5.0)
    raw = redis_asyncio.from_url(URL, decode_responses=True)
    try:
        yield Replicas(a, b, clock, raw, prefix)
    finally:
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*")]
        if keys:
            await raw.delete(*keys)
        for client in (a, b):
            await client.aclose()
        await raw.aclose()


@pytest.fixture
async def rs() -> AsyncIterator[Replicas]:
    async for r in _replicas(CFG):
        yield r


async def trip(h: RedisHealth, key: str = KEY) -> None:
    for _ in range(CFG.failure_threshold):
        await h.record_failure(key, ErrorClass.SERVER, None)


async def test_two_replicas_see_the_same_breaker(rs: Replicas) -> None:
    await rs.a.record_failure(KEY, ErrorClass.SERVER, None)
    await rs.b.record_failure(KEY, ErrorClass.SERVER, None)
    assert await rs.a.allow(KEY) and await rs.b.allow(KEY)
    await rs.a.record_failure(KEY, ErrorClass.SERVER, None)  # third in a row, two replicas
    assert not await rs.b.allow(KEY)
    snap = (await rs.b.snapshot())[KEY]
    assert snap.state is Phase.OPEN and snap.consecutive_failures == 3
    assert snap.cooldown_remaining_s == 5 and snap.last_error is ErrorClass.SERVER
    rs.clock.advance(5)  # the fake clock, not Redis TIME, decides
    assert await rs.b.allow(KEY)
    assert (await rs.a.snapshot())[KEY].state is Phase.HALF_OPEN
    await rs.b.record_success(KEY)
    assert (await rs.a.snapshot())[KEY].state is Phase.CLOSED
    assert await rs.a.allow(KEY)


async def test_concurrent_allows_hand_out_exactly_the_probes(rs: Replicas) -> None:
    await trip(rs.a)
    for round_ in range(4):
        rs.clock.advance((await rs.a.snapshot())[KEY].cooldown_remaining_s)
        calls = [h.allow(KEY) for _ in range(40) for h in (rs.a, rs.b)]
        granted = await asyncio.gather(*calls)
        assert sum(granted) == CFG.half_open_probes, round_
        await rs.b.record_failure(KEY, ErrorClass.SERVER, None)  # a probe fails: re-open
        assert (await rs.a.breaker_state(KEY)).cooldown_s == min(60, 5 * 2 ** (round_ + 1))


async def test_lost_probes_come_back_after_the_probe_timeout(rs: Replicas) -> None:
    await trip(rs.a)
    rs.clock.advance(5)
    assert sum([await rs.a.allow(KEY) for _ in range(5)]) == 3
    rs.clock.advance(CFG.probe_timeout_s)
    assert await rs.b.allow(KEY)


async def test_rate_limit_retry_after_is_shared(rs: Replicas) -> None:
    await rs.a.record_failure(KEY, ErrorClass.RATE_LIMIT, 42.0)
    rs.clock.advance(41.5)
    assert not await rs.b.allow(KEY)
    rs.clock.advance(0.5)
    assert await rs.b.allow(KEY)


async def test_client_errors_write_nothing(rs: Replicas) -> None:
    for _ in range(10):
        await rs.a.record_failure(KEY, ErrorClass.CLIENT, 5.0)
    assert [k async for k in rs.raw.scan_iter(match=f"{rs.prefix}*")] == []
    assert await rs.b.allow(KEY)


async def test_every_key_has_a_ttl(rs: Replicas) -> None:
    keep_ms = (max(2 * CFG.window_s, CFG.probe_timeout_s) + 60) * 1000
    await rs.a.record_success(KEY)
    assert 0 < await rs.raw.pttl(rs.a.breaker_key(KEY)) <= keep_ms
    for _ in range(CFG.failure_threshold):
        await rs.a.record_failure("anthropic/claude", ErrorClass.AUTH, None)
    open_ttl = await rs.raw.pttl(rs.a.breaker_key("anthropic/claude"))
    assert CFG.auth_cooldown_s * 1000 < open_ttl <= (CFG.auth_cooldown_s * 1000 + keep_ms)
    await rs.b.record_headroom(KEY, Headroom(0, 100, rs.clock.now() + 30, rs.clock.now() + 90))
    room_ttl = await rs.raw.pttl(rs.a.headroom_key(KEY))
    assert 90_000 < room_ttl <= 150_000
    keys = [k async for k in rs.raw.scan_iter(match=f"{rs.prefix}*")]
    assert len(keys) == 4  # two breakers, one headroom, the index
    for k in keys:
        assert await rs.raw.pttl(k) > 0, k


async def test_headroom_is_shared_and_replaced(rs: Replicas) -> None:
    room = Headroom(requests_remaining=0, tokens_remaining=1234, reset_at=rs.clock.now() + 2.5)
    await rs.a.record_headroom(KEY, room)
    snap = (await rs.b.snapshot())[KEY]
    assert snap.headroom == room and snap.state is Phase.CLOSED
    await rs.b.record_headroom(KEY, Headroom(tokens_remaining=9))
    assert (await rs.a.snapshot())[KEY].headroom == Headroom(tokens_remaining=9)
    await rs.b.record_headroom(KEY, Headroom())
    assert KEY not in await rs.a.snapshot()


async def test_scripts_run_by_sha(rs: Replicas) -> None:
    async def calls(cmd: str) -> int:
        stats = await rs.raw.info("commandstats")
        return int(stats.get(f"cmdstat_{cmd}", {}).get("calls", 0))

    await rs.a.allow(KEY)  # warm: the script may have to be loaded once
    evals, shas = await calls("eval"), await calls("evalsha")
    await trip(rs.a)
    await rs.b.allow(KEY)
    await rs.b.record_success(KEY)
    assert await calls("evalsha") - shas >= CFG.failure_threshold + 2
    assert await calls("eval") == evals


async def test_ping() -> None:
    up, down = (RedisHealth(URL, CFG, FakeClock()),
                RedisHealth(f"redis://127.0.0.1:{free_port()}/0", CFG, FakeClock()))
    try:
        assert await up.ping()
        assert not await down.ping()
    finally:
        await up.aclose()
        await down.aclose()


async def test_without_redis_each_replica_keeps_its_own_breakers(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    down = RedisHealth(f"redis://127.0.0.1:{free_port()}/0", CFG, clock, timeout_s=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="thrifty.resilience.redis_health"):
            assert await down.allow(KEY)
            await trip(down)
            assert not await down.allow(KEY)  # the local breaker opened
            await down.record_headroom(KEY, Headroom(requests_remaining=3))
            snap = await down.snapshot()
            assert snap[KEY].state is Phase.OPEN
            assert snap[KEY].headroom == Headroom(requests_remaining=3)
            clock.advance(5)
            assert await down.allow(KEY)
        assert len(caplog.records) == 1  # once per outage, not once per call
        assert "unreachable" in caplog.records[0].getMessage()
    finally:
        await down.aclose()


# ---- parity with the pure breaker ---------------------------------------------------------

PARITY_CFG = BreakerConfig(failure_threshold=3, min_requests=4, error_rate=0.5, window_s=10,
                           half_open_probes=2, probe_timeout_s=6, base_cooldown_s=2,
                           cooldown_growth=1.7, max_cooldown_s=20, rate_limit_cooldown_s=3,
                           auth_cooldown_s=50, max_retry_after_s=40)
STEPS = [0.0, 0.0, 0.1, 0.7, 1.3, 2.9, 6.1, 11.0, 23.0]
CLASSES = list(ErrorClass)
RETRY_AFTER = [None, None, None, 0.0, 0.4, 2.5, 7.25, 100.0]


@pytest.fixture
async def parity() -> AsyncIterator[Replicas]:
    async for r in _replicas(PARITY_CFG):
        yield r


@pytest.mark.parametrize("seed", range(6))
async def test_lua_and_python_make_the_same_transitions(parity: Replicas, seed: int) -> None:
    rng = random.Random(seed)
    memory = MemoryHealth(PARITY_CFG, parity.clock)
    seen: set[tuple[Phase, int]] = set()
    for step in range(250):
        parity.clock.advance(rng.choice(STEPS))
        op, redis_h = rng.random(), rng.choice((parity.a, parity.b))
        if op < 0.4:
            assert await redis_h.allow(KEY) == await memory.allow(KEY), step
        elif op < 0.7:
            await redis_h.record_success(KEY)
            await memory.record_success(KEY)
        else:
            cls, ra = rng.choice(CLASSES), rng.choice(RETRY_AFTER)
            await redis_h.record_failure(KEY, cls, ra)
            await memory.record_failure(KEY, cls, ra)
        state = await redis_h.breaker_state(KEY)
        assert state == await memory.breaker_state(KEY), step
        seen.add((state.state, min(state.opens, 3)))
    assert await parity.a.snapshot() == await memory.snapshot()
    # The history went through every phase and re-opened with a grown cooldown.
    assert {(Phase.CLOSED, 0), (Phase.OPEN, 1), (Phase.HALF_OPEN, 1), (Phase.OPEN, 2)} <= seen
