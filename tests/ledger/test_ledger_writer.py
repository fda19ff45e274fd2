"""LedgerWriter: submit never blocks, batches flush on size or time, nothing is lost."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest

from thrifty.ledger.entry import LedgerEntry
from thrifty.ledger.sqlite import SQLiteLedger
from thrifty.ledger.store import SpendRow
from thrifty.ledger.writer import LedgerWriter

MakeEntry = Callable[..., LedgerEntry]


class ListStore:
    """A LedgerStore in a list; ``fail_times`` makes the first calls raise, ``gate`` (if
    given) makes every write wait until it is set."""

    def __init__(self, fail_times: int = 0, gate: threading.Event | None = None) -> None:
        self.rows: list[LedgerEntry] = []
        self.batches: list[int] = []
        self.fail_times = fail_times
        self.gate = gate
        self.closed = False

    def write_batch(self, entries: Sequence[LedgerEntry]) -> None:
        if self.gate is not None:
            assert self.gate.wait(5)
        if self.fail_times:
            self.fail_times -= 1
            raise OSError("disk on fire")
        self.rows.extend(entries)
        self.batches.append(len(entries))

    def spend(self, by: str, since: float | None, until: float | None = None) -> list[SpendRow]:
        return []

    def get(self, request_id: str) -> LedgerEntry | None:
        return next((r for r in self.rows if r.request_id == request_id), None)

    def count(self) -> int:
        return len(self.rows)

    def close(self) -> None:
        self.closed = True


async def _until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_submit_is_synchronous_and_does_not_wait_for_a_stuck_store(
    entry: MakeEntry,
) -> None:
    assert not inspect.iscoroutinefunction(LedgerWriter.submit)
    gate = threading.Event()
    store = ListStore(gate=gate)
    writer = LedgerWriter(store, batch_size=10, flush_interval_s=0.01)
    await writer.start()
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    for i in range(1_000):
        writer.submit(entry(i))
    assert time.perf_counter() - started < 0.5
    assert writer.pending == 1_000  # the store has not accepted anything yet
    gate.set()
    assert await writer.close()
    assert [r.request_id for r in store.rows] == [f"req-{i:06d}" for i in range(1_000)]
    assert max(store.batches) == 10
    assert (writer.written, writer.pending, writer.failures) == (1_000, 0, 0)
    assert store.closed  # the writer owns its store by default


async def test_close_writes_everything_to_sqlite(entry: MakeEntry) -> None:
    store = SQLiteLedger(":memory:")
    writer = LedgerWriter(store, owns_store=False)
    await writer.start()
    for i in range(10_000):
        writer.submit(entry(i, cost_nano_usd=i))
    assert await writer.close()
    assert store.count() == 10_000
    [row] = store.spend("model", None)
    assert row.cost == Decimal(sum(range(10_000))) / 10**9
    store.close()


async def test_a_full_batch_is_written_before_the_interval(entry: MakeEntry) -> None:
    store = ListStore()
    writer = LedgerWriter(store, batch_size=5, flush_interval_s=60)
    await writer.start()
    await asyncio.sleep(0)
    for i in range(5):
        writer.submit(entry(i))
    await _until(lambda: store.count() == 5)
    assert store.batches == [5]
    await writer.close()


async def test_a_partial_batch_is_written_on_the_interval(entry: MakeEntry) -> None:
    store = ListStore()
    writer = LedgerWriter(store, batch_size=1_000, flush_interval_s=0.01)
    await writer.start()
    writer.submit(entry(1))
    await _until(lambda: store.count() == 1)
    await writer.close()


async def test_failed_write_is_retried_and_rows_are_kept(
    entry: MakeEntry, caplog: pytest.LogCaptureFixture
) -> None:
    store = ListStore(fail_times=1)
    writer = LedgerWriter(store, flush_interval_s=0.01, retry_initial_s=0.01)
    caplog.set_level(logging.WARNING, logger="thrifty.ledger")
    await writer.start()
    for i in range(3):
        writer.submit(entry(i, user="secret-user"))
    await _until(lambda: store.count() == 3)
    assert [r.request_id for r in store.rows] == ["req-000000", "req-000001", "req-000002"]
    assert writer.failures == 1
    assert any("3 rows kept for retry" in r.getMessage() for r in caplog.records)
    assert not any("req-0" in r.getMessage() or "secret" in r.getMessage()
                   for r in caplog.records)
    await writer.close()


async def test_flush_retries_until_written(entry: MakeEntry) -> None:
    store = ListStore(fail_times=2)
    writer = LedgerWriter(store, retry_initial_s=0.001)
    writer.submit(entry(1))
    assert await writer.flush()
    assert (store.count(), writer.failures, writer.pending) == (1, 2, 0)


async def test_close_gives_up_loudly_on_a_dead_store(
    entry: MakeEntry, caplog: pytest.LogCaptureFixture
) -> None:
    store = ListStore(fail_times=10**9)
    writer = LedgerWriter(store, retry_initial_s=0.005)
    await writer.start()
    writer.submit(entry(1))
    writer.submit(entry(2))
    assert not await writer.close(timeout_s=0.05)
    assert writer.pending == 2  # kept, not dropped
    assert not store.closed  # so a later flush() can still write them
    assert any(r.levelno == logging.ERROR and "2 rows are still unwritten" in r.getMessage()
               for r in caplog.records)


async def test_a_large_backlog_is_reported_with_its_size(
    entry: MakeEntry, caplog: pytest.LogCaptureFixture
) -> None:
    store = ListStore()
    writer = LedgerWriter(store, max_backlog=5)
    for i in range(7):
        writer.submit(entry(i))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "backlog is 6 rows" in warnings[0]
    assert await writer.close()
    assert store.count() == 7


async def test_rows_submitted_after_close_are_kept_for_a_flush(
    entry: MakeEntry, caplog: pytest.LogCaptureFixture
) -> None:
    store = ListStore()
    writer = LedgerWriter(store)
    await writer.start()
    assert await writer.close()
    writer.submit(entry(1))
    writer.submit(entry(2))
    assert sum("after close" in r.getMessage() for r in caplog.records) == 1
    assert writer.pending == 2
    assert await writer.flush()
    assert store.count() == 2
