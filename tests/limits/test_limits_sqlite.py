"""SQLiteCounters on disk: a versioned schema, state that survives a restart, and four
worker processes hammering one budget without ever overbooking it or losing a reservation."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import sqlite3
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from thrifty.errors import ConfigError
from thrifty.ledger.sqlite import SQLiteLedger
from thrifty.limits.model import Limit
from thrifty.limits.sqlite_counters import SQLiteCounters

NOW = 1_714_564_800.0
BUDGET = Limit("usd", "day", "team", "t", 60_000)
REQUESTS = Limit("requests", "total", "global", None, 180)


def test_schema_is_versioned_and_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "limits.db"
    with SQLiteCounters(path) as counters:
        assert counters.schema_version == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT version FROM limits_schema_migrations").fetchall() == [(1,)]
    conn.close()


async def test_counts_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    with SQLiteCounters(path) as first:
        await first.reserve("a", [(BUDGET, 700)], NOW)
        await first.reserve("b", [(BUDGET, 300)], NOW)
        await first.settle("a", {BUDGET.id: 650})
    with SQLiteCounters(path) as second:
        assert await second.usage([BUDGET], NOW) == [(BUDGET, 650, 300)]
        await second.release("b")  # a reservation made by the process before the restart
        assert await second.usage([BUDGET], NOW) == [(BUDGET, 650, 0)]


def test_it_can_share_a_file_with_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "thrifty.db"
    SQLiteLedger(path).close()
    with SQLiteCounters(path) as counters:
        assert counters.schema_version == 1
    with SQLiteLedger(path) as ledger:  # each keeps its own version table
        assert ledger.count() == 0


def test_a_newer_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    SQLiteCounters(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO limits_schema_migrations VALUES (99, 'from the future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match=r"schema version 99.*upgrade thrifty"):
        SQLiteCounters(path)


def _hammer(path: str, worker: int, start: Barrier, out: Queue[dict[str, int]]) -> None:
    """Reserve against the shared budget; settle, release or abandon each success at random;
    report exactly what this process left behind."""
    start.wait()  # all four open the fresh file (and migrate it) at the same moment
    rng = random.Random(worker)
    report = {"ok": 0, "refused": 0, "settled_usd": 0, "settled_requests": 0,
              "open_usd": 0, "open_requests": 0, "overbooked": 0}

    async def run() -> None:
        with SQLiteCounters(path) as counters:
            for i in range(200):
                held = rng.randint(100, 900)
                result = await counters.reserve(f"w{worker}-{i}", [(REQUESTS, 1), (BUDGET, held)],
                                                NOW)
                if not result.ok:
                    report["refused"] += 1
                    continue
                report["ok"] += 1
                for limit, settled, reserved in await counters.usage([BUDGET, REQUESTS], NOW):
                    report["overbooked"] += settled + reserved > limit.amount
                fate = rng.random()
                if fate < 0.6:
                    spent = rng.randint(0, held)
                    await counters.settle(f"w{worker}-{i}", {BUDGET.id: spent})
                    report["settled_usd"] += spent
                    report["settled_requests"] += 1
                elif fate < 0.85:
                    await counters.release(f"w{worker}-{i}")
                else:
                    report["open_usd"] += held
                    report["open_requests"] += 1

    asyncio.run(run())
    out.put(report)


def test_four_processes_never_overbook_and_account_exactly(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(4)
    out: Queue[dict[str, int]] = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(path, w, start, out)) for w in range(4)]
    for proc in procs:
        proc.start()
    reports = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]

    def total(key: str) -> int:
        return sum(report[key] for report in reports)

    assert total("overbooked") == 0
    assert total("ok") + total("refused") == 800
    assert total("refused") > 0  # the budgets really were contended
    with SQLiteCounters(path) as counters:
        (_, usd_settled, usd_reserved), (_, req_settled, req_reserved) = _usage_now(counters)
    assert (usd_settled, usd_reserved) == (total("settled_usd"), total("open_usd"))
    assert (req_settled, req_reserved) == (total("settled_requests"), total("open_requests"))
    assert usd_settled + usd_reserved <= BUDGET.amount
    assert req_settled + req_reserved <= REQUESTS.amount


def _usage_now(counters: SQLiteCounters) -> list[tuple[Limit, int, int]]:
    return asyncio.run(counters.usage([BUDGET, REQUESTS], NOW))
