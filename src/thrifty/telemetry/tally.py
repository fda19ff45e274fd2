"""Accumulators in front of prometheus_client series: the request path adds to plain
Python numbers, and ``flush`` moves the totals into the series (at scrape time, and every
second with several workers). A prometheus_client increment is 0.7 us in one process and
1.3-3.6 us in multiprocess mode (a lock and a write to a memory-mapped file); adding to an
attribute is a few tens of nanoseconds, and a flush costs per series, not per request.

Only the event loop's thread touches these (requests and flushes alike), so no locks."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any


class Count:
    """A counter child's pending increment."""

    __slots__ = ("child", "value")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.value = 0.0

    def flush(self) -> None:
        if self.value:
            self.child.inc(self.value)
            self.value = 0.0


class Hist:
    """A histogram child's pending observations, already bucketed."""

    __slots__ = ("bounds", "child", "counts", "n", "total")

    def __init__(self, child: Any, bounds: Sequence[float]) -> None:
        self.child = child
        self.bounds = (*bounds, float("inf"))
        self.counts = [0] * len(self.bounds)
        self.n = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        # the first bound >= value: Prometheus buckets are "le" (less than or equal)
        self.counts[bisect_left(self.bounds, value)] += 1
        self.n += 1
        self.total += value

    def flush(self) -> None:
        if not self.n:
            return
        # prometheus_client offers no "observe many": add to the child's per-bucket values
        # (stored non-cumulatively, in one process and in multiprocess files alike)
        buckets = self.child._buckets
        for i, count in enumerate(self.counts):
            if count:
                buckets[i].inc(count)
                self.counts[i] = 0
        self.child._sum.inc(self.total)
        self.n, self.total = 0, 0.0
