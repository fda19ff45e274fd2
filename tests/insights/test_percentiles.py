"""Exact nearest-rank percentiles from histogram + seek, against a sort in Python, on both
backends, from the rollup and from the request rows; and the bucket arithmetic."""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from thrifty.insights.db import InsightsDB
from thrifty.insights.filters import Filters
from thrifty.insights.percentiles import PERCENTILES, bucket_bounds, locate, percentiles
from thrifty.ledger.entry import LedgerEntry
from thrifty.ledger.rollups import bucket_sql

from .conftest import DAY0, DAY2, open_seeded


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def spread_ledger() -> tuple[list[LedgerEntry], dict[str, list[float]]]:
    """Latencies across every bucket width (ms to minutes), errors that must not count."""
    rng = random.Random(3)
    rows, answered = [], {"a": [], "b": []}
    for i in range(600):
        model = "a" if i % 3 else "b"
        latency = round(rng.choice((rng.uniform(1, 999), rng.uniform(1000, 9999),
                                    rng.uniform(10_000, 150_000))), 3)
        status = 500 if i % 17 == 0 else 200
        if status == 200:
            answered[model].append(latency)
        rows.append(LedgerEntry(f"q{i}", DAY0 + i * 200, "m", "p", model, status,
                                latency_ms=latency, team="t1" if i % 2 else "t2"))
    return rows, answered


@pytest.fixture(params=["sqlite", "postgres"])
def spread_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InsightsDB]:
    yield from open_seeded(request.param, tmp_path, spread_ledger()[0])


@pytest.mark.parametrize("filters", [Filters(since=DAY0, until=DAY2),
                                     Filters(since=DAY0 - 1, until=DAY2)],
                         ids=["rollup", "rows"])
def test_percentiles_are_exact(spread_db: InsightsDB, filters: Filters) -> None:
    spread_db.refresh()
    _, answered = spread_ledger()
    found = {(p.model, p.metric): p for p in percentiles(spread_db, filters)}
    for model, values in answered.items():
        got = found[(model, "latency")]
        assert got.count == len(values)
        assert got.values == tuple(nearest_rank(values, p) for p in PERCENTILES)
    assert not any(metric == "ttft" for _, metric in found)  # no stream in this ledger


def test_percentiles_follow_filters(spread_db: InsightsDB) -> None:
    rows, _ = spread_ledger()
    t1 = [r.latency_ms for r in rows if r.team == "t1" and r.status == 200
          and r.upstream_model == "a"]
    found = {p.model: p for p in percentiles(spread_db, Filters(since=DAY0, until=DAY2,
                                                                dims=(("team", "t1"),)))}
    assert found["a"].values[0] == nearest_rank(t1, 0.5)
    assert found["a"].count == len(t1)


def test_postgres_agrees_with_percentile_disc(tmp_path: Path) -> None:
    for db in open_seeded("postgres", tmp_path, spread_ledger()[0]):
        rows = db.fetch(
            "SELECT upstream_model, percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            "FROM requests WHERE status < 400 GROUP BY 1")
        found = {p.model: p.values[1] for p in percentiles(db, Filters(since=0))}
        assert found == {str(m): float(v) for m, v in rows}


def test_locate() -> None:
    assert locate([(1, 1)], 0.99) == (1, 0)
    assert locate([(1, 3), (2, 1)], 0.5) == (1, 1)
    assert locate([(1, 3), (2, 1)], 0.95) == (2, 0)
    with pytest.raises(ValueError):
        locate([], 0.5)


def test_bucket_bounds_invert_the_sql_buckets() -> None:
    conn = sqlite3.connect(":memory:")
    for x in [0.0, 9.999, 10.0, 999.999, 1000.0, 9999.9, 10_000.0, 99_999.0, 100_000.0,
              3e6, *(random.Random(1).uniform(0, 200_000) for _ in range(500))]:
        (bucket,) = conn.execute(f"SELECT {bucket_sql('?', postgres=False)}",
                                 (x, x, x, x, x, x)).fetchone()
        low, high = bucket_bounds(bucket)
        assert low <= x < high, (x, bucket)
