"""A small ledger whose every figure is computed by hand in the tests, written through the
real stores (SQLite, and PostgreSQL when it listens on 127.0.0.1:5432), read back through
``thrifty.insights``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import listening
from thrifty.insights.db import InsightsDB, PostgresInsights, SQLiteInsights
from thrifty.ledger.entry import AttemptRow, LedgerEntry

DAY0 = 1_714_521_600.0  # 2024-05-01T00:00:00Z
DAY1 = DAY0 + 86_400
DAY2 = DAY1 + 86_400
PG_DSN = os.environ.get("THRIFTY_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")



def _ok(n: int, tier: int, provider: str, model: str, inp: int, out: int, cost: int,
        verdict: str = "accepted", status: int = 200) -> AttemptRow:
    return AttemptRow(n=n, tier=tier, provider=provider, upstream_model=model, status=status,
                      input_tokens=inp, output_tokens=out, cost_nano_usd=cost,
                      verdict=verdict, latency_ms=10.0)


def small_ledger() -> list[LedgerEntry]:
    """Five requests over two UTC days (see the module docstring of test_queries.py)."""
    return [
        LedgerEntry("r1", DAY0 + 100, "cheap", "openai", "gpt-4o-mini", 200, key_id="k1",
                    team="search", input_tokens=1000, output_tokens=500, cost_nano_usd=450_000,
                    latency_ms=100.0, route="cheap;fallback", calls=1,
                    attempts=(_ok(0, 0, "openai", "gpt-4o-mini", 1000, 500, 450_000),)),
        LedgerEntry("r2", DAY0 + 200, "smart", "anthropic", "claude-sonnet-4-6", 200,
                    stream=True, key_id="k2", team="search", input_tokens=2000,
                    output_tokens=600, cost_nano_usd=7_830_000, latency_ms=900.0,
                    ttft_ms=200.0, route="smart;cascade;auto", calls=2, attempts=(
                        _ok(0, 0, "openai", "gpt-4o-mini", 1000, 300, 330_000,
                            verdict="escalated: format"),
                        _ok(1, 1, "anthropic", "claude-sonnet-4-6", 1000, 300, 7_500_000))),
        LedgerEntry("r3", DAY0 + 300, "gpt-4o", "openai", "gpt-4o", 502, key_id="k3",
                    team="research", latency_ms=50.0, error_type="upstream_error",
                    route="direct", calls=1, attempts=(
                        AttemptRow(0, 0, "openai", "gpt-4o", 502, "upstream_error"),)),
        LedgerEntry("r4", DAY1 + 10, "cheap", "openai", "gpt-4o-mini", 200, stream=True,
                    key_id="k3", team="research", input_tokens=100, output_tokens=100,
                    cost_nano_usd=75_000, latency_ms=300.0, ttft_ms=80.0,
                    route="cheap;fallback", calls=2, attempts=(
                        AttemptRow(0, 0, "groq", "llama-3.1-8b", 429, "rate_limit_exceeded"),
                        _ok(1, 0, "openai", "gpt-4o-mini", 100, 100, 75_000))),
        LedgerEntry("r5", DAY1 + 20, "cheap", None, None, 429,
                    error_type="budget_exceeded", latency_ms=1.0, calls=0),
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InsightsDB]:
    """A reader over ``small_ledger()`` written through the backend's real store."""
    yield from open_seeded(request.param, tmp_path, small_ledger())


def open_seeded(backend: str, tmp_path: Path, rows: list[LedgerEntry]) -> Iterator[InsightsDB]:
    if backend == "sqlite":
        from thrifty.ledger.sqlite import SQLiteLedger

        path = str(tmp_path / "ledger.db")
        with SQLiteLedger(path) as store:
            store.write_batch(rows)
        db = SQLiteInsights(path)
        try:
            yield db
        finally:
            db.close()
        return
    if not listening(5432):
        pytest.skip("nothing listens on 127.0.0.1:5432 (PostgreSQL)")
    import psycopg
    from psycopg import sql

    from thrifty.ledger.postgres import PostgresLedger

    schema = f"thrifty_insights_{uuid.uuid4().hex[:10]}"
    with PostgresLedger(PG_DSN, schema=schema) as store:
        half = len(rows) // 2  # two batches: the triggers add up across statements
        store.write_batch(rows[:half])
        store.write_batch(rows[half:])
    pg = PostgresInsights(PG_DSN, schema=schema)
    try:
        yield pg
    finally:
        pg.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
