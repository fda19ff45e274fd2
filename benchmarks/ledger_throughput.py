#!/usr/bin/env python3
"""Ledger insert throughput: rows per second into SQLite and PostgreSQL, each with its
``attempts`` rows, against a reference measured in the same run (the same rows serialised
with orjson to a JSON-lines file, one write per batch, fsync at the end: the least any
durable log does).

Every row is a routed request with 1-2 upstream attempts and a ~400-byte decision trace.
Each store is measured twice, on a fresh file or schema each time:

  write_batch   the store called directly, batches of 256, one transaction each
  LedgerWriter  the real writer (batch_size 256): rows submitted from the event loop, which
                yields after every 256 and waits while more than 8 batches are queued (the
                writer's sustained rate, not a backlog); the clock stops when ``close()``
                has written them all

Each case stops at ``--rows`` or after ``--seconds`` (whichever first), so a run is bounded.
PostgreSQL is skipped, with the reason, when it cannot be reached.

    python benchmarks/ledger_throughput.py [--rows 50000] [--seconds 8] [--dsn ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path

import orjson

from thrifty.core.ids import new_request_id
from thrifty.ledger.entry import AttemptRow, LedgerEntry
from thrifty.ledger.sqlite import SQLiteLedger
from thrifty.ledger.store import LedgerStore
from thrifty.ledger.writer import LedgerWriter

BATCH = 256
TRACE = orjson.dumps({
    "plan": {"policy": "cascade", "tiers": [["openai/gpt-4o-mini"], ["anthropic/claude-3-5"]]},
    "calls": [{"model": "openai/gpt-4o-mini", "status": 200, "cost_usd": "0.0000045",
               "ms": 412.5, "checks": {"length": "ok", "refusal": "ok", "json": "ok"}}],
    "reason": "tier 0 accepted: every check passed within the latency budget of 2000 ms",
    "pad": "x" * 120,
}).decode()


def make_rows(n: int) -> list[LedgerEntry]:
    rows = []
    for i in range(n):
        escalated = i % 2 == 1  # every other request fell back once before being served
        served = AttemptRow(int(escalated), int(escalated), "openai", "gpt-4o-mini", 200, None,
                            812, 0, 0, 143, 0, 207_600, 412.5, "accepted")
        failed = AttemptRow(0, 0, "groq", "llama-3.1-8b", 429, "rate_limit_exceeded",
                            latency_ms=35.0, usage_known=False)
        attempts = (failed, served) if escalated else (served,)
        rows.append(LedgerEntry(
            new_request_id(), 1.7e9 + i * 0.001, "cheap", "openai", "gpt-4o-mini",
            200, key_id=f"key-{i % 40}", user=f"user-{i % 1000}", input_tokens=812,
            output_tokens=143, cost_nano_usd=207_600, latency_ms=431.0, ttft_ms=120.0,
            route="alias:cheap > cascade", trace=TRACE, calls=len(attempts), attempts=attempts,
        ))
    return rows


def _attempt_count(rows: list[LedgerEntry]) -> int:
    return sum(len(r.attempts) for r in rows)


def reference(rows: list[LedgerEntry], seconds: float, directory: Path) -> tuple[int, float]:
    """Rows written as orjson lines, one write per batch, fsync at the end."""
    started = time.perf_counter()
    deadline = started + seconds
    written = 0
    with open(directory / "reference.jsonl", "wb") as out:
        for first in range(0, len(rows), BATCH):
            batch = rows[first:first + BATCH]
            out.write(b"".join(orjson.dumps(r) + b"\n" for r in batch))
            written += len(batch)
            if time.perf_counter() > deadline:
                break
        out.flush()
        os.fsync(out.fileno())
    return written, time.perf_counter() - started


def direct(store: LedgerStore, rows: list[LedgerEntry], seconds: float) -> tuple[int, float]:
    started = time.perf_counter()
    deadline = started + seconds
    written = 0
    for first in range(0, len(rows), BATCH):
        batch = rows[first:first + BATCH]
        store.write_batch(batch)
        written += len(batch)
        if time.perf_counter() > deadline:
            break
    return written, time.perf_counter() - started


async def through_writer(
    store: LedgerStore, rows: list[LedgerEntry], seconds: float
) -> tuple[int, float]:
    writer = LedgerWriter(store, batch_size=BATCH, owns_store=False)
    await writer.start()
    started = time.perf_counter()
    deadline = started + seconds
    submitted = 0
    for first in range(0, len(rows), BATCH):
        for row in rows[first:first + BATCH]:
            writer.submit(row)
        submitted += min(BATCH, len(rows) - first)
        await asyncio.sleep(0)  # the request path yields; the flusher gets its turn
        while writer.pending > 8 * BATCH:  # offer no more than the store takes (no backlog)
            await asyncio.sleep(0.001)
        if time.perf_counter() > deadline:
            break
    if not await writer.close(timeout_s=None):
        raise RuntimeError("the writer could not write every row")
    assert writer.written == submitted
    return submitted, time.perf_counter() - started


Counted = tuple[LedgerStore, Callable[[], int]]
Opened = Iterator[Counted]
"""A fresh store and a function counting the ``attempts`` rows it holds."""


@contextmanager
def sqlite_store(directory: Path) -> Opened:
    path = directory / f"ledger-{uuid.uuid4().hex}.db"

    def attempts() -> int:
        with closing(sqlite3.connect(path)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])

    store = SQLiteLedger(path)
    try:
        yield store, attempts
    finally:
        store.close()


@contextmanager
def postgres_store(dsn: str) -> Opened:
    import psycopg
    from psycopg import sql

    from thrifty.ledger.postgres import PostgresLedger

    name = f"thrifty_bench_{uuid.uuid4().hex[:10]}"
    schema = sql.Identifier(name)
    with psycopg.connect(dsn, autocommit=True) as admin:

        def attempts() -> int:
            query = sql.SQL("SELECT COUNT(*) FROM {}.attempts").format(schema)
            row = admin.execute(query).fetchone()
            return int(row[0]) if row is not None else 0

        store = PostgresLedger(dsn, schema=name)
        try:
            yield store, attempts
        finally:
            store.close()
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(schema))


def postgres_unreachable(dsn: str) -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed: pip install 'thrifty[postgres]'"
    try:
        psycopg.connect(dsn, connect_timeout=2).close()
    except psycopg.Error as exc:
        return f"cannot connect to {dsn}: {exc}".splitlines()[0]
    return None


def report(label: str, written: int, elapsed: float, cpu: float, ref_rate: float,
           attempts: float) -> None:
    rate = written / elapsed
    print(f"  {label:<32} {written:>8,} {elapsed:>8.2f} {rate:>11,.0f} {rate * attempts:>11,.0f}"
          f" {rate / ref_rate:>7.3f} {cpu / written * 1e6:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=8.0, help="cap per case")
    parser.add_argument("--dsn", default=os.environ.get(
        "THRIFTY_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    print(f"python {platform.python_version()}, {platform.system()}, {os.cpu_count()} cpus")
    rows = make_rows(args.rows)
    per_row = _attempt_count(rows) / len(rows)
    row_bytes = sum(len(orjson.dumps(r)) for r in rows[:1000]) / 1000
    print(f"{len(rows):,} rows, {per_row:.2f} attempts per row, ~{row_bytes:.0f} bytes as JSON; "
          f"batches of {BATCH}; cap {args.seconds:g} s per case\n")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cpu = time.process_time()
        ref_n, ref_s = reference(rows, args.seconds, directory)
        ref_cpu = time.process_time() - cpu
        ref_rate = ref_n / ref_s
        print(f"  {'case':<32} {'rows':>8} {'seconds':>8} {'rows/s':>11} {'attempts/s':>11}"
              f" {'x ref':>7} {'cpu us/row':>10}")
        report("reference: orjson lines + fsync", ref_n, ref_s, ref_cpu, ref_rate, per_row)

        openers: list[tuple[str, Callable[[], AbstractContextManager[Counted]]]] = [
            ("sqlite", lambda: sqlite_store(directory))]
        unreachable = postgres_unreachable(args.dsn)
        if unreachable is None:
            openers.append(("postgres", lambda: postgres_store(args.dsn)))
        for name, opener in openers:
            for label, case in (("write_batch", direct), ("LedgerWriter", writer_case)):
                with opener() as (store, attempts):
                    cpu = time.process_time()
                    n, s = case(store, rows, args.seconds)
                    cpu = time.process_time() - cpu
                    # Check what was stored, not just what was sent.
                    assert store.count() == n
                    assert attempts() == _attempt_count(rows[:n])
                report(f"{name} {label}", n, s, cpu, ref_rate, per_row)
        if unreachable is not None:
            print(f"  postgres skipped: {unreachable}")
    print("\nrows/s counts requests; attempts/s the attempts rows written with them; x ref is"
          " rows/s over the reference's;\ncpu us/row is this process's CPU (all threads) per"
          " row: what the gateway pays (PostgreSQL's own work is in its server process).")


def writer_case(store: LedgerStore, rows: list[LedgerEntry], seconds: float) -> tuple[int, float]:
    return asyncio.run(through_writer(store, rows, seconds))

if __name__ == "__main__":
    main()
