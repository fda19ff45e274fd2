"""Exact latency and time-to-first-token percentiles per served deployment, without sorting
every row (SQLite has no percentile function, and sorting a million rows takes seconds).

Nearest-rank definition (PostgreSQL's ``percentile_disc``): the p-th percentile of n values
is the value at rank ceil(p * n) in ascending order. Two steps:

1. a histogram per deployment (from the ``insights_latency`` rollup when the window is whole
   days and filtered by deployment only, from the request rows otherwise) says which bucket
   holds that rank and the rank's offset inside it;
2. one indexed seek per percentile reads the exact value inside that bucket.

Only answered requests (status < 400) count: an error's latency is not the model's speed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from thrifty.insights.db import InsightsDB
from thrifty.insights.filters import Filters, Source, where
from thrifty.ledger.rollups import bucket_sql
from thrifty.ledger.store import ERROR_STATUS

PERCENTILES = (0.5, 0.95, 0.99)
METRICS = {"latency": "latency_ms", "ttft": "ttft_ms"}
_ROLLUP_DIMS = frozenset({"model", "provider"})


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """``[low, high)`` in ms of a histogram bucket; the inverse of ``rollups.bucket_sql``."""
    if bucket < 100:
        return 10.0 * bucket, 10.0 * bucket + 10
    if bucket < 190:
        return 100.0 * (bucket - 90), 100.0 * (bucket - 90) + 100
    if bucket < 280:
        return 1000.0 * (bucket - 180), 1000.0 * (bucket - 180) + 1000
    return 100_000.0, math.inf


def locate(histogram: Sequence[tuple[int, int]], p: float) -> tuple[int, int]:
    """For buckets ``(bucket, count)`` in ascending order: the bucket holding the
    nearest-rank ``p`` percentile and the 0-based offset of that rank inside it.

    >>> locate([(3, 2), (7, 2)], 0.5)
    (3, 1)
    >>> locate([(3, 2), (7, 2)], 0.99)
    (7, 1)
    """
    total = sum(count for _, count in histogram)
    if total == 0:
        raise ValueError("no values")
    rank = max(1, math.ceil(p * total))
    seen = 0
    for bucket, count in histogram:
        if seen + count >= rank:
            return bucket, rank - seen - 1
        seen += count
    raise AssertionError("unreachable: rank <= total")


@dataclass(frozen=True, slots=True)
class Percentiles:
    provider: str
    model: str
    metric: str
    """``latency`` (the whole request) or ``ttft`` (time to first token, streams only)."""
    count: int
    values: tuple[float, ...]
    """One per ``PERCENTILES``, in ms."""


def percentiles(db: InsightsDB, filters: Filters) -> list[Percentiles]:
    """Every deployment's percentiles of both metrics over ``filters``."""
    out: list[Percentiles] = []
    for metric in METRICS:
        for (provider, model), hist in sorted(_histograms(db, filters, metric).items()):
            values = tuple(_exact(db, filters, metric, provider, model, hist, p)
                           for p in PERCENTILES)
            out.append(Percentiles(provider, model, metric, sum(n for _, n in hist), values))
    return out


def _histograms(db: InsightsDB, filters: Filters, metric: str
                ) -> dict[tuple[str, str], list[tuple[int, int]]]:
    rollup = filters.whole_days and {d for d, _ in filters.dims} <= _ROLLUP_DIMS
    m = db.dialect.mark
    if rollup:
        src = Source("insights_latency", True, db.dialect)
        w, params = where(filters, src)
        sql = (f"SELECT provider, upstream_model, bucket, SUM(n) FROM insights_latency {w} "
               f"AND metric = {m} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
        params.append(metric)
    else:
        src = Source("requests", False, db.dialect)
        w, params = where(filters, src)
        column = METRICS[metric]
        bucket = bucket_sql(column, postgres=db.dialect.postgres)
        sql = (f"SELECT provider, upstream_model, {bucket} AS b, COUNT(*) FROM requests {w} "
               f"AND status < {ERROR_STATUS} AND provider IS NOT NULL "
               f"AND {column} IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    hists: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for provider, model, bucket, count in db.fetch(sql, params):
        hists[(str(provider), str(model))].append((int(bucket), int(count)))
    return hists


def _exact(db: InsightsDB, filters: Filters, metric: str, provider: str, model: str,
           hist: Sequence[tuple[int, int]], p: float) -> float:
    bucket, offset = locate(hist, p)
    low, high = bucket_bounds(bucket)
    column = METRICS[metric]
    m = db.dialect.mark
    w, params = where(filters, Source("requests", False, db.dialect))
    upper = f" AND {column} < {m}" if math.isfinite(high) else ""
    # The range lets the index seek; the bucket test keeps float edge cases in the bucket
    # the histogram counted them in.
    index = db.dialect.indexed_by(f"requests_{metric}")
    sql = (f"SELECT {column} FROM requests {index} {w} AND provider = {m} "
           f"AND upstream_model = {m} AND status < {ERROR_STATUS} AND {column} IS NOT NULL "
           f"AND {column} >= {m}{upper} "
           f"AND {bucket_sql(column, postgres=db.dialect.postgres)} = {m} "
           f"ORDER BY {column} LIMIT 1 OFFSET {m}")
    args = [*params, provider, model, low - 1.0, *([high + 1.0] if upper else []), bucket,
            offset]
    rows = db.fetch(sql, args)
    if not rows:  # rows written between the two steps moved the rank: fall back to the edge
        return low
    return float(rows[0][0])
