"""The Counters contract, case by case, on every local back end (memory, SQLite in memory,
SQLite file): all or nothing, settle and release exactly once, expiry, late settles, roll-over,
forgetting old windows, and asyncio concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from thrifty.core.clock import FakeClock
from thrifty.limits.memory import MemoryCounters
from thrifty.limits.model import Counters, Hold, Limit
from thrifty.limits.sqlite_counters import SQLiteCounters

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z
RPM = Limit("requests", "minute", "key", "k1", 3)
USD_DAY = Limit("usd", "day", "team", "t", 1_000, soft_ratio=0.8)
TTL_S = 600.0


def _make(kind: str, tmp_path: Path, **options: Any) -> Any:
    options = {"ttl_s": TTL_S, **options}
    if kind == "memory":
        return MemoryCounters(**options)
    return SQLiteCounters(":memory:" if kind == "sqlite-memory" else tmp_path / "c.db", **options)


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def counters(kind: str, tmp_path: Path) -> AsyncIterator[Any]:
    made = _make(kind, tmp_path)
    yield made
    getattr(made, "close", lambda: None)()


async def _usage(counters: Any, now: float = T0) -> list[tuple[int, int]]:
    return [(s, r) for _, s, r in await counters.usage([RPM, USD_DAY], now)]


async def test_reserve_is_all_or_nothing(counters: Any) -> None:
    assert (await counters.reserve("a", [(RPM, 1), (USD_DAY, 900)], T0)).ok
    refused = await counters.reserve("b", [(RPM, 1), (USD_DAY, 101)], T0)
    assert not refused.ok and refused.holds == ()
    assert refused.refusal is not None and refused.refusal.limit == USD_DAY
    assert refused.refusal.used == 900 and refused.refusal.retry_after_s == 43_200.0
    assert await _usage(counters) == [(0, 1), (0, 900)]  # b took no request either
    ok = await counters.reserve("c", [(RPM, 1), (USD_DAY, 100)], T0)
    assert ok.ok and ok.warnings == (USD_DAY,)  # 1000 > 0.8 x 1000
    assert ok.holds == (Hold(RPM, 1, T0), Hold(USD_DAY, 100, T0 - 43_200.0))


async def test_settle_moves_the_real_amount_once(counters: Any) -> None:
    await counters.reserve("a", [(RPM, 1), (USD_DAY, 500)], T0)
    await counters.settle("a", {USD_DAY.id: 120})  # RPM left out: settles as held
    await counters.settle("a", {USD_DAY.id: 999})
    await counters.release("a")
    assert await _usage(counters) == [(1, 0), (120, 0)]
    await counters.reserve("b", [(USD_DAY, 10)], T0)
    await counters.settle("b", {USD_DAY.id: 700})  # spent more than held: recorded anyway
    assert await _usage(counters) == [(1, 0), (820, 0)]
    await counters.settle("never-reserved", {USD_DAY.id: 5})
    assert await _usage(counters) == [(1, 0), (820, 0)]


async def test_release_drops_the_holds_once(counters: Any) -> None:
    await counters.reserve("a", [(RPM, 1), (USD_DAY, 500)], T0)
    await counters.reserve("b", [(RPM, 1)], T0)
    await counters.release("a")
    await counters.release("a")
    await counters.settle("a", {})
    assert await _usage(counters) == [(0, 1), (0, 0)]


async def test_a_bad_settle_changes_nothing(counters: Any) -> None:
    await counters.reserve("a", [(RPM, 1), (USD_DAY, 500)], T0)
    with pytest.raises(ValueError, match="cannot settle -5"):
        await counters.settle("a", {RPM.id: 1, USD_DAY.id: -5})
    assert await _usage(counters) == [(0, 1), (0, 500)]
    await counters.settle("a", {USD_DAY.id: 5})
    assert await _usage(counters) == [(1, 0), (5, 0)]


async def test_an_open_id_cannot_be_reserved_again(counters: Any) -> None:
    await counters.reserve("a", [(RPM, 1)], T0)
    with pytest.raises(ValueError, match="'a' is already in use"):
        await counters.reserve("a", [(RPM, 1)], T0)
    await counters.settle("a", {})
    assert (await counters.reserve("a", [(RPM, 1)], T0)).ok  # closed ids may be reused


async def test_expired_reservations_free_their_room_and_late_settles_still_count(
    counters: Any,
) -> None:
    clock = FakeClock(T0)
    await counters.reserve("crashed", [(USD_DAY, 600)], clock.now())
    await counters.reserve("slow", [(USD_DAY, 400)], clock.now())
    assert not (await counters.reserve("x", [(USD_DAY, 1)], clock.now())).ok
    clock.advance(TTL_S)  # expiry is inclusive: at expires_at the room is free
    assert await _usage(counters, clock.now()) == [(0, 0), (0, 0)]
    assert (await counters.reserve("x", [(USD_DAY, 1_000)], clock.now())).ok
    await counters.settle("slow", {USD_DAY.id: 250})  # money spent is money spent
    await counters.release("crashed")
    assert await _usage(counters, clock.now()) == [(0, 0), (250, 1_000)]


async def test_windows_roll_over_and_late_settles_land_where_they_were_taken(
    counters: Any,
) -> None:
    clock = FakeClock(T0 + 59)
    await counters.reserve("a", [(RPM, 1)], clock.now())
    for rid in ("b", "c"):
        await counters.reserve(rid, [(RPM, 1)], clock.now())
    assert not (await counters.reserve("d", [(RPM, 1)], clock.now())).ok
    clock.advance(1)  # a new minute: a fresh bucket
    assert (await counters.reserve("d", [(RPM, 1)], clock.now())).ok
    await counters.settle("a", {})
    [(_, settled, reserved)] = await counters.usage([RPM], clock.now())
    assert (settled, reserved) == (0, 1)
    [(_, settled, reserved)] = await counters.usage([RPM], T0)
    assert (settled, reserved) == (1, 2)


async def test_old_windows_and_expired_reservations_are_forgotten(
    kind: str, tmp_path: Path
) -> None:
    counters = _make(kind, tmp_path, ttl_s=60.0, retain_s=3_600.0)
    await counters.reserve("a", [(RPM, 1)], T0)
    await counters.settle("a", {})
    await counters.reserve("lost", [(RPM, 1)], T0)
    later = T0 + 2 * 3_600
    await counters.reserve("tick", [], later)  # any reserve sweeps
    [(_, settled, reserved)] = await counters.usage([RPM], T0)
    assert (settled, reserved) == (0, 0)
    await counters.settle("lost", {RPM.id: 1})  # too late even for a late settle
    [(_, settled, _)] = await counters.usage([RPM], T0)
    assert settled == 0
    assert (await counters.reserve("lost", [(RPM, 1)], later)).ok  # the id is free again
    getattr(counters, "close", lambda: None)()


async def test_a_late_settle_lands_even_after_its_window_was_forgotten(
    kind: str, tmp_path: Path
) -> None:
    """A reservation taken mid-window outlives its window's retention as a tombstone: its
    late settle still lands in that window, which comes back."""
    counters = _make(kind, tmp_path, ttl_s=60.0, retain_s=3_600.0)
    await counters.reserve("slow", [(RPM, 1)], T0 + 30)  # expires at T0 + 90
    await counters.reserve("tick", [(RPM, 1)], T0 + 3_670)  # the minute at T0 is forgotten
    assert await counters.usage([RPM], T0) == [(RPM, 0, 0)]
    await counters.settle("slow", {RPM.id: 1})  # the tombstone lives until T0 + 3_690
    assert await counters.usage([RPM], T0) == [(RPM, 1, 0)]
    assert await counters.usage([RPM], T0 + 3_670) == [(RPM, 0, 1)]
    getattr(counters, "close", lambda: None)()


async def test_concurrent_reservations_never_overbook(counters: Any) -> None:
    budget = Limit("usd", "hour", "global", None, 5_000)

    async def one(i: int) -> bool:
        result = await counters.reserve(f"r{i}", [(budget, 100), (RPM, 0)], T0)
        return bool(result.ok)

    results = await asyncio.gather(*(one(i) for i in range(120)))
    assert sum(results) == 50
    [(_, settled, reserved)] = await counters.usage([budget], T0)
    assert (settled, reserved) == (0, 5_000)


def test_ttl_must_fit_in_retention(kind: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ttl_s <= retain_s"):
        _make(kind, tmp_path, ttl_s=100.0, retain_s=10.0)


def test_both_satisfy_the_counters_protocol(tmp_path: Path) -> None:
    with SQLiteCounters(tmp_path / "p.db") as on_disk:
        implementations: list[Counters] = [MemoryCounters(), on_disk]
        assert all(callable(c.reserve) and callable(c.usage) for c in implementations)
