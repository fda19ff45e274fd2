"""SQLiteLedger: rows round-trip, batches are atomic and idempotent, processes share a file."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from thrifty.ledger.entry import LedgerEntry
from thrifty.ledger.migrations import SQLITE_MIGRATIONS
from thrifty.ledger.sqlite import SQLiteLedger
from thrifty.ledger.store import LedgerStore, spend_total

MakeEntry = Callable[..., LedgerEntry]


def test_every_field_round_trips(tmp_path: Path) -> None:
    full = LedgerEntry(
        request_id="req-full",
        ts=1_714_521_600.125,
        requested_model="cheap",
        provider="anthropic",
        upstream_model="claude-3-5-haiku",
        status=200,
        stream=True,
        key_id="key-7",
        user="alice",
        input_tokens=1_000,
        cached_input_tokens=600,
        cache_write_tokens=300,
        output_tokens=250,
        reasoning_tokens=40,
        cost_nano_usd=123_456_789_012,
        latency_ms=812.5,
        ttft_ms=95.25,
        error_type="upstream_timeout",
        route="alias:cheap",
        usage_known=False,
    )
    bare = LedgerEntry("req-bare", 1.0, "gpt-x", None, None, 499)
    with SQLiteLedger(tmp_path / "ledger.db") as store:
        store.write_batch([full, bare])
        assert store.get("req-full") == full
        assert store.get("req-bare") == bare
        assert store.get("req-missing") is None
        assert store.count() == 2


def test_satisfies_the_store_protocol() -> None:
    store: LedgerStore = SQLiteLedger(":memory:")
    store.close()
    store.close()  # idempotent


def test_creates_parent_directories_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    SQLiteLedger(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_rewritten_request_id_is_skipped_not_duplicated(entry: MakeEntry) -> None:
    store = SQLiteLedger(":memory:")
    store.write_batch([entry(1), entry(2)])
    # A retried batch overlaps rows already stored: no error, no duplicates.
    store.write_batch([entry(2, cost_nano_usd=1), entry(3)])
    assert store.count() == 3
    stored = store.get("req-000002")
    assert stored is not None and stored.cost_nano_usd == 4_500


def test_a_batch_of_ten_thousand_is_one_transaction(entry: MakeEntry) -> None:
    store = SQLiteLedger(":memory:")
    rows = [entry(i) for i in range(10_000)]
    # The last row violates NOT NULL: if the batch were several transactions, the earlier
    # rows would survive.
    rows[-1] = entry(9_999, requested_model=None)
    with pytest.raises(sqlite3.IntegrityError):
        store.write_batch(rows)
    assert store.count() == 0
    rows[-1] = entry(9_999)
    store.write_batch(rows)
    assert store.count() == 10_000


def _write_rows(path: str, worker: int, start: multiprocessing.synchronize.Barrier) -> None:
    start.wait()  # both processes open the fresh file at the same moment
    store = SQLiteLedger(path)
    for first in range(0, 2_000, 50):
        store.write_batch(
            [
                LedgerEntry(f"w{worker}-{i}", float(i), "m", "p", "m", 200, cost_nano_usd=i)
                for i in range(first, first + 50)
            ]
        )
    store.close()


def test_two_processes_write_one_file_concurrently(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_rows, args=(path, w, start)) for w in (1, 2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    with SQLiteLedger(path) as store:
        assert store.count() == 4_000
        [row] = store.spend("model", None)
        assert row.cost_nano_usd == 2 * sum(range(2_000))
    conn = sqlite3.connect(path)
    versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
    conn.close()
    assert [v for (v,) in versions] == [m.version for m in SQLITE_MIGRATIONS]


# -- spend queries ----------------------------------------------------------------------


@pytest.fixture
def spend_store(entry: MakeEntry) -> SQLiteLedger:
    day2 = 1_714_608_000.0  # 2024-05-02T00:00:00Z
    store = SQLiteLedger(":memory:")
    store.write_batch(
        [
            entry(1, cost_nano_usd=1, key_id="k1", latency_ms=100.0),
            entry(2, cost_nano_usd=123_456_789, key_id="k1", latency_ms=300.0,
                  cached_input_tokens=4, reasoning_tokens=2, cache_write_tokens=3),
            entry(3, provider="anthropic", upstream_model="claude-haiku",
                  requested_model="claude-haiku", cost_nano_usd=999_999_999_999,
                  ts=day2 - 0.5, latency_ms=50.0),
            entry(4, provider="anthropic", upstream_model="claude-haiku", status=503,
                  cost_nano_usd=0, ts=day2, latency_ms=2_000.0, error_type="upstream_unavailable"),
            entry(5, provider=None, upstream_model=None, status=404, cost_nano_usd=0,
                  requested_model="nope", ts=day2 + 10, latency_ms=1.0, input_tokens=0,
                  output_tokens=0),
        ]
    )
    return store


def test_spend_by_model_orders_by_cost(spend_store: SQLiteLedger) -> None:
    rows = spend_store.spend("model", None)
    assert [r.group for r in rows] == ["anthropic/claude-haiku", "openai/gpt-4o-mini",
                                       "(unrouted) nope"]
    claude, gpt, unrouted = rows
    assert (claude.requests, claude.errors) == (2, 1)
    assert claude.cost == Decimal("999.999999999")
    assert claude.avg_latency_ms == 1_025.0
    assert claude.max_latency_ms == 2_000.0
    assert gpt.cost == Decimal("0.123456790")
    assert (gpt.input_tokens, gpt.cached_input_tokens, gpt.cache_write_tokens) == (20, 4, 3)
    assert (gpt.output_tokens, gpt.reasoning_tokens) == (10, 2)
    assert (unrouted.requests, unrouted.errors, unrouted.cost) == (1, 1, Decimal(0))


def test_spend_totals_are_exact_decimal(spend_store: SQLiteLedger) -> None:
    total = spend_total(spend_store.spend("provider", None))
    assert total.cost == Decimal("1000.123456789")
    assert total.cost_nano_usd == 1 + 123_456_789 + 999_999_999_999
    assert total.requests == 5
    assert total.errors == 2
    assert total.avg_latency_ms == pytest.approx((100 + 300 + 50 + 2_000 + 1) / 5)
    assert total.max_latency_ms == 2_000.0


@pytest.mark.parametrize(
    ("by", "groups"),
    [
        ("provider", ["anthropic", "openai", "(unrouted)"]),
        ("requested", ["claude-haiku", "cheap", "nope"]),
        ("day", ["2024-05-01", "2024-05-02"]),
        ("key", ["(no key)", "k1"]),
        ("status", ["200", "404", "503"]),
    ],
)
def test_spend_groupings(spend_store: SQLiteLedger, by: str, groups: list[str]) -> None:
    rows = spend_store.spend(by, None)
    assert [r.group for r in rows] == groups
    assert sum(r.requests for r in rows) == 5


def test_spend_time_window_is_half_open(spend_store: SQLiteLedger) -> None:
    day2 = 1_714_608_000.0
    assert [r.requests for r in spend_store.spend("day", day2)] == [2]
    assert [(r.group, r.requests) for r in spend_store.spend("day", None, day2)] == [
        ("2024-05-01", 3)
    ]
    assert spend_store.spend("day", day2 + 100) == []


def test_spend_rejects_unknown_grouping(spend_store: SQLiteLedger) -> None:
    with pytest.raises(ValueError, match="choose one of"):
        spend_store.spend("colour", None)
