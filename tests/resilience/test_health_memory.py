"""MemoryHealth: the in-process HealthStore over the pure breaker, on a FakeClock."""

from __future__ import annotations

import asyncio

import pytest

from thrifty.core.clock import FakeClock
from thrifty.resilience.breaker import BreakerConfig, ErrorClass, Phase
from thrifty.resilience.headroom import Headroom
from thrifty.resilience.health import HealthStore, MemoryHealth

CFG = BreakerConfig(failure_threshold=3, half_open_probes=2, base_cooldown_s=5,
                    cooldown_growth=2, max_cooldown_s=60, min_requests=100)
KEY = "openai/gpt-4o-mini"
OTHER = "anthropic/claude-3-5-haiku"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> MemoryHealth:
    return MemoryHealth(CFG, clock)


async def trip(health: HealthStore, key: str = KEY) -> None:
    for _ in range(CFG.failure_threshold):
        await health.record_failure(key, ErrorClass.SERVER, None)


async def test_it_is_a_health_store(health: MemoryHealth) -> None:
    store: HealthStore = health  # mypy checks the protocol; this checks it at run time too
    assert await store.allow(KEY)
    assert await store.snapshot() == {}


async def test_breaker_lifecycle(health: MemoryHealth, clock: FakeClock) -> None:
    await trip(health)
    assert not await health.allow(KEY)
    assert await health.allow(OTHER)  # one deployment down is not all of them
    snap = (await health.snapshot())[KEY]
    assert snap.state is Phase.OPEN and snap.cooldown_remaining_s == 5
    assert snap.consecutive_failures == 3 and snap.error_rate == 1.0
    assert snap.last_error is ErrorClass.SERVER and snap.opens == 1
    clock.advance(3)
    assert (await health.snapshot())[KEY].cooldown_remaining_s == 2
    clock.advance(2)
    assert await health.allow(KEY) and await health.allow(KEY)  # two probes
    assert not await health.allow(KEY)
    await health.record_failure(KEY, ErrorClass.TIMEOUT, None)  # a probe failed
    snap = (await health.snapshot())[KEY]
    assert snap.state is Phase.OPEN and snap.cooldown_remaining_s == 10
    assert snap.last_error is ErrorClass.TIMEOUT
    clock.advance(10)
    assert await health.allow(KEY)
    await health.record_success(KEY)
    assert (await health.snapshot())[KEY].state is Phase.CLOSED
    assert await health.allow(KEY)


async def test_concurrent_allows_on_half_open_hand_out_the_probe_limit(
        health: MemoryHealth, clock: FakeClock) -> None:
    await trip(health)
    clock.advance(5)
    granted = await asyncio.gather(*(health.allow(KEY) for _ in range(50)))
    assert sum(granted) == CFG.half_open_probes


async def test_client_errors_are_ignored(health: MemoryHealth) -> None:
    for _ in range(20):
        await health.record_failure(KEY, ErrorClass.CLIENT, 30)
    assert await health.allow(KEY)
    assert await health.snapshot() == {}


async def test_rate_limit_retry_after_is_honoured(health: MemoryHealth,
                                                  clock: FakeClock) -> None:
    await health.record_failure(KEY, ErrorClass.RATE_LIMIT, 42)
    assert not await health.allow(KEY)
    clock.advance(41.9)
    assert not await health.allow(KEY)
    clock.advance(0.1)
    assert await health.allow(KEY)


async def test_allow_on_a_closed_breaker_leaves_the_state_untouched(
        health: MemoryHealth) -> None:
    await health.record_failure(KEY, ErrorClass.SERVER, None)
    before = await health.breaker_state(KEY)
    for _ in range(10):
        assert await health.allow(KEY)
    assert await health.breaker_state(KEY) is before


async def test_headroom_shows_in_the_snapshot(health: MemoryHealth, clock: FakeClock) -> None:
    room = Headroom(requests_remaining=0, tokens_remaining=500, reset_at=clock.now() + 2)
    await health.record_headroom(OTHER, room)
    snap = await health.snapshot()
    assert snap[OTHER].headroom == room and snap[OTHER].state is Phase.CLOSED
    await health.record_success(KEY)
    snap = await health.snapshot()
    assert set(snap) == {KEY, OTHER}
    assert snap[KEY].headroom is None and snap[KEY].error_rate == 0.0
