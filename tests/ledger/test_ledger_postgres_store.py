"""PostgresLedger against the real PostgreSQL on 127.0.0.1:5432: rows round-trip, batches are
atomic and idempotent, spend agrees with SQLite, time-bounded spend uses an index. Each test
gets its own schema, dropped afterwards. Skipped only when nothing listens on the port."""

from __future__ import annotations

import dataclasses
import os
import random
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from tests.services import listening

from thrifty.ledger.entry import AttemptRow, LedgerEntry
from thrifty.ledger.postgres import PostgresLedger, spend_query
from thrifty.ledger.sqlite import SQLiteLedger
from thrifty.ledger.store import SPEND_GROUPINGS, LedgerStore, spend_total
from thrifty.ledger.writer import LedgerWriter

MakeEntry = Callable[..., LedgerEntry]
DSN = os.environ.get("THRIFTY_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
DAY2 = 1_714_608_000.0  # 2024-05-02T00:00:00Z



pytestmark = pytest.mark.skipif(
    not listening(5432),
    reason="nothing listens on 127.0.0.1:5432; start PostgreSQL with a database 'test' that "
           "user postgres can reach (or set THRIFTY_TEST_PG_DSN)",
)


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(DSN, autocommit=True) as conn:
        yield conn


@pytest.fixture
def schema(admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[str]:
    name = f"thrifty_test_{uuid.uuid4().hex[:12]}"
    yield name
    admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def store(schema: str) -> Iterator[PostgresLedger]:
    with PostgresLedger(DSN, schema=schema) as opened:
        yield opened


def _attempt(n: int, **overrides: Any) -> AttemptRow:
    return dataclasses.replace(AttemptRow(n, 0, "openai", "gpt-4o-mini", 200), **overrides)


def test_every_field_round_trips_with_its_attempts(store: PostgresLedger) -> None:
    attempts = (
        _attempt(0, status=429, error_type="rate_limit_exceeded", latency_ms=12.5,
                 usage_known=False),
        AttemptRow(1, 1, "anthropic", "claude-3-5-haiku", 200, None, 1_000, 600, 300, 250, 40,
                   123_456_789_012, 812.5, "accepted", True),
    )
    full = LedgerEntry(
        request_id="req-full", ts=1_714_521_600.125, requested_model="cheap",
        provider="anthropic", upstream_model="claude-3-5-haiku", status=200, stream=True,
        key_id="key-7", team="search", tags='["a", "b"]', user="alice", input_tokens=1_000,
        cached_input_tokens=600, cache_write_tokens=300, output_tokens=250,
        reasoning_tokens=40, cost_nano_usd=123_456_789_012, latency_ms=812.5, ttft_ms=95.25,
        error_type="upstream_timeout", route="alias:cheap", usage_known=False,
        trace='{"plan": {"tiers": 2}, "note": "é"}', calls=2, attempts=attempts,
    )
    assert all(getattr(full, f.name) != f.default for f in dataclasses.fields(LedgerEntry)
               if f.default is not dataclasses.MISSING)  # every optional field is set
    bare = LedgerEntry("req-bare", 1.0, "gpt-x", None, None, 499)
    store.write_batch([full, bare])
    # As in SQLite, ``get`` returns the request row; its calls come from ``attempts``.
    assert store.get("req-full") == dataclasses.replace(full, attempts=())
    assert store.attempts("req-full") == list(attempts)
    assert store.get("req-bare") == bare
    assert store.attempts("req-bare") == []
    assert store.get("req-missing") is None
    assert store.count() == 2


def test_satisfies_the_store_protocol_and_close_is_idempotent(schema: str) -> None:
    opened: LedgerStore = PostgresLedger(DSN, schema=schema)
    opened.close()
    opened.close()


def test_rewritten_request_id_is_skipped_not_duplicated(
    store: PostgresLedger, entry: MakeEntry
) -> None:
    store.write_batch([entry(1, attempts=(_attempt(0),)), entry(2, attempts=(_attempt(0),))])
    # A retried batch overlaps rows already stored: no error, no duplicates, first one wins.
    store.write_batch([
        entry(2, cost_nano_usd=1, attempts=(_attempt(0, cost_nano_usd=1), _attempt(1))),
        entry(3),
        entry(3, cost_nano_usd=7),  # the same id twice in one batch
    ])
    assert store.count() == 3
    stored = store.get("req-000002")
    assert stored is not None and stored.cost_nano_usd == 4_500
    assert [(a.n, a.cost_nano_usd) for a in store.attempts("req-000002")] == [(0, 0), (1, 0)]


def test_a_batch_of_ten_thousand_is_one_transaction(
    store: PostgresLedger, entry: MakeEntry, admin: psycopg.Connection[tuple[object, ...]],
    schema: str,
) -> None:
    rows = [entry(i, attempts=(_attempt(0),)) for i in range(10_000)]
    # The last row violates NOT NULL: if the batch were several transactions, the earlier
    # rows (and their attempts) would survive.
    rows[-1] = entry(9_999, requested_model=None)
    with pytest.raises(psycopg.errors.IntegrityError):
        store.write_batch(rows)
    assert store.count() == 0
    attempts = sql.SQL("SELECT COUNT(*) FROM {}.attempts").format(sql.Identifier(schema))
    assert admin.execute(attempts).fetchone() == (0,)
    rows[-1] = entry(9_999)
    store.write_batch(rows)  # the same connection carries on after the failure
    assert store.count() == 10_000
    assert admin.execute(attempts).fetchone() == (9_999,)


def test_a_lost_connection_fails_one_call_then_reconnects(
    store: PostgresLedger, entry: MakeEntry, admin: psycopg.Connection[tuple[object, ...]],
) -> None:
    store.write_batch([entry(1)])
    pid = store._conn.info.backend_pid  # the server side of the store's connection
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        store.write_batch([entry(2)])
    store.write_batch([entry(2), entry(3, attempts=(_attempt(0),))])  # what the writer retries
    assert store.count() == 3
    assert len(store.attempts("req-000003")) == 1


def test_feedback_is_stored_any_number_of_times(
    store: PostgresLedger, admin: psycopg.Connection[tuple[object, ...]], schema: str
) -> None:
    store.add_feedback("req-1", 10.0, 0.25, "openai/gpt-4o-mini", "cheap")
    store.add_feedback("req-1", 11.0, 1.0, None, None)
    query = sql.SQL("SELECT request_id, ts, score, model, route FROM {}.feedback ORDER BY id")
    rows = admin.execute(query.format(sql.Identifier(schema))).fetchall()
    assert rows == [("req-1", 10.0, 0.25, "openai/gpt-4o-mini", "cheap"),
                    ("req-1", 11.0, 1.0, None, None)]


async def test_writer_over_postgres_writes_every_row(schema: str, entry: MakeEntry) -> None:
    store = PostgresLedger(DSN, schema=schema)
    writer = LedgerWriter(store, batch_size=256, flush_interval_s=0.01)
    await writer.start()
    for i in range(10_000):
        writer.submit(entry(i, attempts=(_attempt(0),) if i % 2 else ()))
    assert await writer.close()
    assert writer.written == 10_000
    with PostgresLedger(DSN, schema=schema) as check:
        assert check.count() == 10_000
        [row] = check.spend("model", None)
        assert row.cost_nano_usd == 10_000 * 4_500
        [stats] = check.recent_model_stats(0.0)
        assert stats[:3] == ("openai", "gpt-4o-mini", 5_000)
    with pytest.raises(psycopg.OperationalError):
        store.count()  # the writer owned the store and closed it


# -- spend queries ----------------------------------------------------------------------


def _spend_rows(entry: MakeEntry) -> list[LedgerEntry]:
    return [
        entry(1, cost_nano_usd=1, key_id="k1", team="search", latency_ms=100.0),
        entry(2, cost_nano_usd=123_456_789, key_id="k1", team="search", latency_ms=300.0,
              cached_input_tokens=4, reasoning_tokens=2, cache_write_tokens=3),
        entry(3, provider="anthropic", upstream_model="claude-haiku",
              requested_model="claude-haiku", cost_nano_usd=999_999_999_999,
              ts=DAY2 - 0.5, latency_ms=50.0),
        entry(4, provider="anthropic", upstream_model="claude-haiku", status=503,
              cost_nano_usd=0, ts=DAY2, latency_ms=2_000.0, error_type="upstream_unavailable"),
        entry(5, provider=None, upstream_model=None, status=404, cost_nano_usd=0,
              requested_model="nope", ts=DAY2 + 10, latency_ms=1.0, input_tokens=0,
              output_tokens=0),
    ]


@pytest.fixture
def spend_store(store: PostgresLedger, entry: MakeEntry) -> PostgresLedger:
    store.write_batch(_spend_rows(entry))
    return store


def test_spend_by_model_orders_by_cost(spend_store: PostgresLedger) -> None:
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


def test_spend_totals_are_exact_decimal(spend_store: PostgresLedger) -> None:
    total = spend_total(spend_store.spend("provider", None))
    assert total.cost == Decimal("1000.123456789")
    assert total.cost_nano_usd == 1 + 123_456_789 + 999_999_999_999
    assert (total.requests, total.errors) == (5, 2)
    assert total.avg_latency_ms == pytest.approx((100 + 300 + 50 + 2_000 + 1) / 5)
    assert total.max_latency_ms == 2_000.0


@pytest.mark.parametrize(
    ("by", "groups"),
    [
        ("provider", ["anthropic", "openai", "(unrouted)"]),
        ("requested", ["claude-haiku", "cheap", "nope"]),
        ("day", ["2024-05-01", "2024-05-02"]),
        ("key", ["(no key)", "k1"]),
        ("team", ["(no team)", "search"]),
        ("status", ["200", "404", "503"]),
    ],
)
def test_spend_groupings(spend_store: PostgresLedger, by: str, groups: list[str]) -> None:
    rows = spend_store.spend(by, None)
    assert [r.group for r in rows] == groups
    assert sum(r.requests for r in rows) == 5


def test_spend_time_window_is_half_open(spend_store: PostgresLedger) -> None:
    assert [r.requests for r in spend_store.spend("day", DAY2)] == [2]
    assert [(r.group, r.requests) for r in spend_store.spend("day", None, DAY2)] == [
        ("2024-05-01", 3)
    ]
    assert spend_store.spend("day", DAY2 + 100) == []


def test_spend_rejects_unknown_grouping(spend_store: PostgresLedger) -> None:
    with pytest.raises(ValueError, match="choose one of"):
        spend_store.spend("colour", None)


def _random_entries(rng: random.Random, n: int) -> list[LedgerEntry]:
    deployments = [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku"), ("groq", "llama"),
                   (None, None), ("Zed", "a-model"), ("openai", "gpt-4o")]
    rows = []
    for i in range(n):
        provider, model = rng.choice(deployments)
        attempts = tuple(
            AttemptRow(k, k, provider or "openai", model or "gpt-4o", rng.choice([200, 429, 499]),
                       output_tokens=rng.randrange(500), latency_ms=rng.uniform(1, 900))
            for k in range(rng.randrange(3))
        )
        rows.append(LedgerEntry(
            f"r{i}", 1_714_521_600.0 + rng.uniform(0, 3 * 86_400), rng.choice(["cheap", "best"]),
            provider, model, rng.choice([200, 200, 200, 400, 429, 499, 503]),
            key_id=rng.choice([None, "k1", "k2"]), team=rng.choice([None, "a", "B"]),
            tags=rng.choice([None, '["x"]', '["x", "y"]']),
            input_tokens=rng.randrange(10_000), cached_input_tokens=rng.randrange(100),
            cache_write_tokens=rng.randrange(100), output_tokens=rng.randrange(4_000),
            reasoning_tokens=rng.randrange(50), cost_nano_usd=rng.randrange(10**12),
            latency_ms=rng.uniform(1, 5_000), ttft_ms=rng.choice([None, rng.uniform(1, 500)]),
            attempts=attempts,
        ))
    return rows


def test_spend_and_model_stats_agree_with_sqlite(store: PostgresLedger) -> None:
    rows = _random_entries(random.Random(7), 600)
    store.write_batch(rows)
    with SQLiteLedger(":memory:") as lite:
        lite.write_batch(rows)
        windows = [(None, None), (1_714_550_000.0, None), (None, 1_714_650_000.0),
                   (1_714_600_000.0, 1_714_700_000.0)]
        for by in SPEND_GROUPINGS:
            for since, until in windows:
                ours, theirs = store.spend(by, since, until), lite.spend(by, since, until)
                assert [dataclasses.replace(r, avg_latency_ms=0.0) for r in ours] == [
                    dataclasses.replace(r, avg_latency_ms=0.0) for r in theirs], (by, since)
                assert [r.avg_latency_ms for r in ours] == pytest.approx(
                    [r.avg_latency_ms for r in theirs], rel=1e-12)
        ours_stats = sorted(store.recent_model_stats(1_714_600_000.0))
        theirs_stats = sorted(lite.recent_model_stats(1_714_600_000.0))
    assert [s[:3] for s in ours_stats] == [s[:3] for s in theirs_stats]
    for mine, other in zip(ours_stats, theirs_stats, strict=True):
        assert mine[3:] == pytest.approx(other[3:], rel=1e-9)


def test_time_bounded_spend_uses_an_index_on_200k_rows(
    store: PostgresLedger, admin: psycopg.Connection[tuple[object, ...]], schema: str
) -> None:
    admin.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    # 200,000 requests over 30 days, seeded server-side (writing them through the store is
    # the benchmark's job, not this test's).
    admin.execute(
        "INSERT INTO requests (request_id, ts, requested_model, provider, upstream_model, "
        "status, key_id, team, input_tokens, output_tokens, cost_nano_usd, latency_ms) "
        "SELECT 'seed-' || g, 1714521600 + g * 12.96, 'cheap', "
        "(ARRAY['openai', 'anthropic', 'groq'])[1 + g % 3], 'model-' || (g % 5), "
        "CASE WHEN g % 40 = 0 THEN 503 ELSE 200 END, 'k' || (g % 50), 't' || (g % 4), "
        "100, 50, 4500 + g % 1000, 100 + g % 300 FROM generate_series(1, 200000) AS g"
    )
    admin.execute("ANALYZE requests")
    assert store.count() == 200_000
    since, until = 1_714_521_600.0 + 86_400, 1_714_521_600.0 + 2 * 86_400  # one day
    for by in SPEND_GROUPINGS:
        query, params = spend_query(by, since, until)
        plan = "\n".join(str(row[0]) for row in admin.execute("EXPLAIN " + query, params))
        assert "Seq Scan" not in plan, plan
        assert "Index Scan" in plan or "Bitmap Index Scan" in plan, plan
    assert sum(r.requests for r in store.spend("team", since, until)) == 6_667
