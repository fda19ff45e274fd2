"""Latency and time-to-first-token percentiles per served deployment, read from a histogram
alone (SQLite has no percentile function, and sorting a million rows takes seconds).

Nearest-rank definition (PostgreSQL's ``percentile_disc``): the p-th percentile of n values
is the value at rank ceil(p * n) in ascending order. A histogram per deployment (from the
``insights_latency`` rollup when the window is whole days and filtered by deployment only,
from the request rows otherwise) says which bucket holds that rank and the rank's offset
among the bucket's values; the value reported is interpolated linearly across the bucket, as
if its values were spread evenly in it.

Error: the reported value lies in the same bucket as the true one, so it is off by less than
one bucket width: under 10 ms below 1 s, 100 ms below 10 s, 1 s below 100 s (half that when
the bucket holds a single value, and far less when its values are spread evenly). From 100 s
up, one open bucket: its lower edge, 100 s, is reported. Not exact on purpose: an exact value
needs a per-row index on (deployment, latency), whose keys land at random B-tree pages: ~40
us of CPU per proxied request (the ledger writer's, and its drag on the event loop).

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
    """One per ``PERCENTILES``, in ms, interpolated inside its histogram bucket."""


def percentiles(db: InsightsDB, filters: Filters) -> list[Percentiles]:
    """Every deployment's percentiles of both metrics over ``filters``."""
    out: list[Percentiles] = []
    for metric in METRICS:
        for (provider, model), hist in sorted(_histograms(db, filters, metric).items()):
            values = tuple(estimate(hist, p) for p in PERCENTILES)
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


def estimate(histogram: Sequence[tuple[int, int]], p: float) -> float:
    """The ``p`` percentile interpolated inside the bucket ``locate`` finds: the k-th of a
    bucket's n values is read at ``low + (k + 0.5) / n * width``.

    >>> estimate([(3, 2), (7, 2)], 0.5)  # 2nd of 2 values in [30, 40) ms
    37.5
    >>> estimate([(280, 5)], 0.99)  # the open bucket from 100 s: its edge
    100000.0
    """
    bucket, offset = locate(histogram, p)
    low, high = bucket_bounds(bucket)
    if not math.isfinite(high):
        return low
    count = next(n for b, n in histogram if b == bucket)
    return low + (offset + 0.5) / count * (high - low)
