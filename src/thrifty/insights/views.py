"""What each dashboard page and the report show, assembled from the queries: ``spend_view``
(spend over time, top spenders, the costliest requests, savings, budgets) and
``health_view`` (latency, time to first token, error, fallback and escalation rates).

Each view records how long each of its queries took, for the 1M-row benchmark and the page
footer. Blocking: run in a worker thread.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from thrifty.insights.budgets import BudgetUsage, budget_usage
from thrifty.insights.db import InsightsDB
from thrifty.insights.filters import DAY, Bucket, Filters
from thrifty.insights.percentiles import Percentiles, percentiles
from thrifty.insights.queries import (
    DeploymentStats,
    RequestRow,
    SeriesRow,
    Tokens,
    deployment_stats,
    request_rows,
    series,
)
from thrifty.insights.savings import Savings, default_baseline, savings
from thrifty.limits.rules import LimitRule
from thrifty.pricing.price import Price

_T = TypeVar("_T")


@dataclass(slots=True)
class Timings:
    ms: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, call: Callable[[], _T]) -> _T:
        t0 = time.perf_counter()
        try:
            return call()
        finally:
            self.ms[name] = (time.perf_counter() - t0) * 1000


@dataclass(frozen=True, slots=True)
class Totals:
    requests: int
    errors: int
    multi: int
    cascade: int
    cascade_multi: int
    cost_nano: int
    tokens: Tokens
    latency_ms_sum: float

    @staticmethod
    def of(stats: Sequence[DeploymentStats]) -> Totals:
        tokens = Tokens()
        for s in stats:
            tokens = tokens + s.tokens
        return Totals(sum(s.requests for s in stats), sum(s.errors for s in stats),
                      sum(s.multi for s in stats), sum(s.cascade for s in stats),
                      sum(s.cascade_multi for s in stats), sum(s.cost_nano for s in stats),
                      tokens, sum(s.latency_ms_sum for s in stats))

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def avg_cost_nano(self) -> float:
        return self.cost_nano / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class GroupTotal:
    group: str
    cost_nano: int
    requests: int
    errors: int
    share: float


@dataclass(frozen=True, slots=True)
class SpendView:
    filters: Filters
    dim: str
    bucket: Bucket
    totals: Totals
    series: tuple[SeriesRow, ...]
    top: tuple[GroupTotal, ...]
    costliest: tuple[RequestRow, ...]
    savings: Savings | None
    budgets: tuple[BudgetUsage, ...]
    timings: Timings


@dataclass(frozen=True, slots=True)
class DeploymentHealth:
    stats: DeploymentStats
    latency: Percentiles | None
    ttft: Percentiles | None

    @property
    def error_rate(self) -> float:
        s = self.stats
        return s.errors / s.requests if s.requests else 0.0

    @property
    def fallback_rate(self) -> float:
        """Requests that needed another call outside a cascade (fallbacks, retries)."""
        s = self.stats
        other = s.multi - s.cascade_multi
        return other / s.requests if s.requests else 0.0

    @property
    def escalated_share(self) -> float:
        """The share of its requests a cascade escalated to this deployment (cascade
        requests it answered after another call)."""
        s = self.stats
        return s.cascade_multi / s.requests if s.requests else 0.0


@dataclass(frozen=True, slots=True)
class HealthView:
    filters: Filters
    totals: Totals
    deployments: tuple[DeploymentHealth, ...]
    timings: Timings


def auto_bucket(filters: Filters, now: float) -> Bucket:
    """Hours up to two days, days beyond."""
    span = (filters.until or now) - filters.since
    return "hour" if span <= 2 * DAY else "day"


def top_groups(rows: Sequence[SeriesRow], limit: int = 10) -> tuple[GroupTotal, ...]:
    """The groups of a series by total cost, highest first."""
    cost: dict[str, int] = defaultdict(int)
    requests: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    for r in rows:
        cost[r.group] += r.cost_nano
        requests[r.group] += r.requests
        errors[r.group] += r.errors
    total = sum(cost.values())
    ranked = sorted(cost, key=lambda g: (-cost[g], -requests[g], g))[:limit]
    return tuple(GroupTotal(g, cost[g], requests[g], errors[g],
                            cost[g] / total if total else 0.0) for g in ranked)


def spend_view(db: InsightsDB, filters: Filters, *, dim: str, bucket: Bucket,
               prices: Mapping[str, Price], baseline: str | None,
               rules: Sequence[tuple[LimitRule, str]], now: float,
               costliest: int = 15) -> SpendView:
    t = Timings()
    t.run("catch_up", db.refresh)
    stats = t.run("deployments", lambda: deployment_stats(db, filters))
    rows = t.run("series", lambda: series(db, filters, dim, bucket))
    top = top_groups(rows)
    costly = t.run("costliest", lambda: request_rows(db, filters, limit=costliest))
    base = baseline if baseline in prices else default_baseline(stats, prices)
    saved = savings(stats, base, prices[base]) if base is not None else None
    budgets = t.run("budgets", lambda: budget_usage(db, rules, now)) if rules else []
    return SpendView(filters, dim, bucket, Totals.of(stats), tuple(rows), top, tuple(costly),
                     saved, tuple(budgets), t)


def health_view(db: InsightsDB, filters: Filters) -> HealthView:
    t = Timings()
    t.run("catch_up", db.refresh)
    stats = t.run("deployments", lambda: deployment_stats(db, filters))
    pcts = t.run("percentiles", lambda: percentiles(db, filters))
    by_key = {(p.provider, p.model, p.metric): p for p in pcts}
    deployments = tuple(
        DeploymentHealth(s, by_key.get((s.provider, s.model, "latency")),
                         by_key.get((s.provider, s.model, "ttft")))
        for s in stats if s.model)
    return HealthView(filters, Totals.of(stats), deployments, t)
