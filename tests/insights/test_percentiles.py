"""Nearest-rank percentiles interpolated from the histogram, against a sort in Python, on
both backends, from the rollup and from the request rows; and the bucket arithmetic."""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from thrifty.insights.db import InsightsDB
from thrifty.insights.filters import Filters
from thrifty.insights.percentiles import (
    PERCENTILES,
    bucket_bounds,
    estimate,
    locate,
    percentiles,
)
from thrifty.ledger.entry import LedgerEntry
from thrifty.ledger.rollups import bucket_sql

from .conftest import DAY0, DAY2, open_seeded


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def bucket_of(value: float) -> int:
    return next(b for b in range(281) if bucket_bounds(b)[0] <= value < bucket_bounds(b)[1])


def assert_close(got: float, values: list[float], p: float) -> None:
    """``got`` lies in the bucket of the true nearest-rank value and, for a bucket of n
    values, within (1 - 1/(2n)) of its width of it (half a width for a lone value); in the
    open bucket from 100 s it is that bucket's edge."""
    true = nearest_rank(values, p)
    bucket = bucket_of(true)
    low, high = bucket_bounds(bucket)
    if math.isinf(high):
        assert got == low, (p, got, true)
        return
    n = sum(1 for v in values if bucket_of(v) == bucket)
    assert low <= got < high, (p, got, true)
    assert abs(got - true) <= (high - low) * (1 - 0.5 / n), (p, got, true, n)


def spread_ledger() -> tuple[list[LedgerEntry], dict[str, list[float]]]:
    """Latencies across every bucket width (ms to minutes), errors that must not count. Model
    "a" is mostly sub-second with a slow tail, so its p50, p95 and p99 fall in 10 ms, 100 ms
    and 1 s wide buckets; "b" is even up to 150 s, so its p95 and p99 are in the open one."""
    rng = random.Random(3)
    rows: list[LedgerEntry] = []
    answered: dict[str, list[float]] = {"a": [], "b": []}
    for i in range(600):
        model = "a" if i % 3 else "b"
        bands = ((1, 999), (1000, 9999), (10_000, 99_999 if model == "a" else 150_000))
        low, high = rng.choices(bands, weights=(90, 7, 3) if model == "a" else (1, 1, 1))[0]
        latency = round(rng.uniform(low, high), 3)
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
def test_percentiles_are_within_their_bucket(spread_db: InsightsDB, filters: Filters) -> None:
    spread_db.refresh()
    _, answered = spread_ledger()
    found = {(p.model, p.metric): p for p in percentiles(spread_db, filters)}
    for model, values in answered.items():
        got = found[(model, "latency")]
        assert got.count == len(values)
        for p, value in zip(PERCENTILES, got.values, strict=True):
            assert_close(value, values, p)
    assert not any(metric == "ttft" for _, metric in found)  # no stream in this ledger


def test_spread_ledger_reaches_every_bucket_width() -> None:
    """The test above checks each width's bound, the open bucket's edge included."""
    _, answered = spread_ledger()
    bounds = [bucket_bounds(bucket_of(nearest_rank(values, p)))
              for values in answered.values() for p in PERCENTILES]
    assert {high - low for low, high in bounds} == {10.0, 100.0, 1000.0, math.inf}


def test_percentiles_follow_filters(spread_db: InsightsDB) -> None:
    rows, _ = spread_ledger()
    t1 = [r.latency_ms for r in rows if r.team == "t1" and r.status == 200
          and r.upstream_model == "a"]
    found = {p.model: p for p in percentiles(spread_db, Filters(since=DAY0, until=DAY2,
                                                                dims=(("team", "t1"),)))}
    assert_close(found["a"].values[0], t1, 0.5)
    assert found["a"].count == len(t1)
    everyone = [r.latency_ms for r in rows if r.status == 200 and r.upstream_model == "a"]
    assert found["a"].count < len(everyone)  # the filter did cut rows


def test_postgres_percentile_disc_is_the_rank_estimated(tmp_path: Path) -> None:
    _, answered = spread_ledger()
    for db in open_seeded("postgres", tmp_path, spread_ledger()[0]):
        rows = db.fetch(
            "SELECT upstream_model, percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) "
            "FROM requests WHERE status < 400 GROUP BY 1")
        found = {p.model: p.values[0] for p in percentiles(db, Filters(since=0))}
        assert set(found) == {str(m) for m, _ in rows} == set(answered)
        for model, disc in rows:
            assert float(disc) == nearest_rank(answered[str(model)], 0.5)
            assert_close(found[str(model)], answered[str(model)], 0.5)


def test_estimate_interpolates_by_rank_inside_the_bucket() -> None:
    # four values a bucket are read at 1/8, 3/8, 5/8 and 7/8 of its width
    assert estimate([(1, 4), (3, 4)], 0.5) == 18.75  # 4th of 4 in [10, 20)
    assert estimate([(1, 4), (3, 4)], 0.75) == 33.75  # 2nd of 4 in [30, 40)
    assert estimate([(3, 1)], 0.99) == 35.0  # a lone value: the middle
    assert estimate([(150, 2)], 0.5) == 6025.0  # 1st of 2 in [6000, 6100)
    assert estimate([(3, 1), (280, 9)], 0.5) == 100_000.0  # the open bucket: its edge


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
