"""The batched ledger writer: the request path hands rows over in O(1) and a background task
writes them to a ``LedgerStore`` in a worker thread.

It must never block or fail the request path, and never drop a row silently: failed batches
stay queued and are retried with backoff; a growing backlog is logged with its size. Row
contents are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from itertools import islice

from thrifty.ledger.entry import LedgerEntry
from thrifty.ledger.store import LedgerStore

log = logging.getLogger("thrifty.ledger")


class LedgerWriter:
    """Owns the queue between the gateway and the store, and by default the store too:
    ``close()`` closes it once every row is written (pass ``owns_store=False`` to keep it open).

    Typical use::

        writer = LedgerWriter(SQLiteLedger("thrifty.db"))
        await writer.start()
        writer.submit(entry)        # on the request path
        await writer.close()        # on shutdown: writes everything still queued
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        batch_size: int = 256,
        flush_interval_s: float = 0.2,
        max_backlog: int = 100_000,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 5.0,
        owns_store: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._store = store
        self._owns_store = owns_store
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._max_backlog = max_backlog
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._pending: deque[LedgerEntry] = deque()
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()  # a batch is full, or close() was called
        self._stop = asyncio.Event()  # close() was called; cuts a backoff short
        self._task: asyncio.Task[None] | None = None
        self._backlog_warned = False
        self._closed = False
        self._late_warned = False
        self._written = 0
        self._failures = 0

    @property
    def store(self) -> LedgerStore:
        return self._store

    @property
    def written(self) -> int:
        """Rows the store has accepted."""
        return self._written

    @property
    def pending(self) -> int:
        """Rows queued and not yet written (including a batch being written right now)."""
        return len(self._pending)

    @property
    def failures(self) -> int:
        """Failed ``write_batch`` calls (each one was or will be retried)."""
        return self._failures

    def submit(self, entry: LedgerEntry) -> None:
        """Queue one row. Never awaits, never blocks, never raises for a slow store."""
        self._pending.append(entry)
        queued = len(self._pending)
        if queued >= self._batch_size and not self._wake.is_set():
            self._wake.set()
        if queued > self._max_backlog and not self._backlog_warned:
            self._backlog_warned = True
            log.warning(
                "ledger backlog is %d rows (max_backlog %d): the store is not keeping up; "
                "the rows are kept in memory until it does",
                queued,
                self._max_backlog,
            )
        if self._closed and not self._late_warned:
            self._late_warned = True  # once: this runs per request
            log.warning("ledger rows were submitted after close(); call flush() to write them")

    async def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._task is None:
            self._closed = False
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="thrifty-ledger-writer")

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Write every queued row, retrying failures with backoff. True when the queue is
        empty; False (after logging how many rows remain) if ``timeout_s`` ran out first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        delay = self._retry_initial
        while not await self._write_pending():
            if deadline is not None and loop.time() + delay > deadline:
                log.error(
                    "ledger store kept failing: %d rows are still unwritten", len(self._pending)
                )
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)
        return True

    async def close(self, timeout_s: float | None = 30.0) -> bool:
        """Stop the flusher, write everything still queued (see ``flush``), then close the
        store if the writer owns it. A store that failed to take every row is left open, so
        a later ``flush()`` can still write them."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task
        flushed = await self.flush(timeout_s)
        if flushed and self._owns_store:
            await asyncio.to_thread(self._store.close)
        return flushed

    async def _run(self) -> None:
        delay = self._retry_initial
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return  # close() writes the rest, with its own deadline
            if await self._write_pending():
                delay = self._retry_initial
                continue
            # Back off before the next try; only close() may cut the wait short, a full
            # batch must not (the store is what is struggling).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, self._retry_max)

    async def _write_pending(self) -> bool:
        """Write queued rows batch by batch. False on the first failure; the failed batch stays
        at the head of the queue. Rows leave the queue only after the store accepted them."""
        async with self._write_lock:
            while self._pending:
                batch = list(islice(self._pending, self._batch_size))
                try:
                    await asyncio.to_thread(self._store.write_batch, batch)
                except Exception as exc:
                    self._failures += 1
                    log.warning(
                        "ledger write of %d rows failed (%s: %s); %d rows kept for retry",
                        len(batch),
                        type(exc).__name__,
                        exc,
                        len(self._pending),
                    )
                    return False
                for _ in batch:
                    self._pending.popleft()
                self._written += len(batch)
                if self._backlog_warned and len(self._pending) <= self._max_backlog:
                    self._backlog_warned = False
                    log.info("ledger backlog is back to %d rows", len(self._pending))
        return True
