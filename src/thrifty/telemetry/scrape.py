"""``GET /metrics``: the per-request series (this process's, or every worker's in
multiprocess mode) plus state read at scrape time, never per request: every deployment's
circuit-breaker state, the headroom left in budgets, and drift alerts.

Scrape-time state is what the answering worker sees: shared when the health store and the
limit counters are shared (Redis, SQLite), that worker's own view when they are in memory."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from thrifty.limits.model import Limit
from thrifty.limits.rules import EACH
from thrifty.pricing.cost import NANO
from thrifty.resilience.breaker import Phase

if TYPE_CHECKING:
    from thrifty.engine.gateway import Gateway
    from thrifty.telemetry.metrics import Metrics

log = logging.getLogger("thrifty.telemetry")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NANO = float(NANO)


@dataclass(slots=True)
class ScrapeState:
    breakers: list[tuple[str, str, str, str]] = field(default_factory=list)
    """``(deployment, provider, model, state)`` for every deployment the gateway routes to."""
    budgets: list[tuple[Limit, int, int]] = field(default_factory=list)
    """``(limit, settled, reserved)`` in each limit's current window."""
    drift: list[dict[str, Any]] = field(default_factory=list)


async def gather_state(gw: Gateway, seen: Iterable[Limit] = ()) -> ScrapeState:
    """Read the shared state; a store that fails leaves its part out (and logs why)
    rather than failing the scrape."""
    state = ScrapeState()
    try:
        state.breakers = await _breakers(gw)
    except Exception as exc:
        log.warning("metrics: breaker states unavailable: %s", type(exc).__name__)
    try:
        state.budgets = await _budgets(gw, seen)
    except Exception as exc:
        log.warning("metrics: budget counters unavailable: %s", type(exc).__name__)
    try:
        state.drift = await _drift(gw)
    except Exception as exc:
        log.warning("metrics: drift alerts unavailable: %s", type(exc).__name__)
    return state


async def _breakers(gw: Gateway) -> list[tuple[str, str, str, str]]:
    snap = await gw.resilience.health.snapshot()
    out: dict[str, tuple[str, str, str, str]] = {}
    for route in gw.routes.routes():
        for t in route.targets:
            h = snap.get(t.key)
            out.setdefault(t.key, (t.key, t.provider, t.upstream_model,
                                   str(h.state) if h else Phase.CLOSED.value))
    return sorted(out.values())


async def _budgets(gw: Gateway, seen: Iterable[Limit]) -> list[tuple[Limit, int, int]]:
    counters = gw.budgets.counters
    if counters is None:
        return []
    limits: dict[str, Limit] = {}
    for rule in gw.budgets.rules:  # configured limits with one counter each
        if rule.value != EACH:
            lim = rule.limit_for(rule.value)
            limits[lim.id] = lim
    for lim in list(seen):  # per-team / per-key ones requests counted against
        limits.setdefault(lim.id, lim)
    if not limits:
        return []
    return await counters.usage(list(limits.values()), gw.clock.now())


async def _drift(gw: Gateway) -> list[dict[str, Any]]:
    drift = getattr(gw, "drift", None)
    alerts = getattr(drift, "alerts", None)
    if alerts is None:
        return []
    found = alerts()
    if inspect.isawaitable(found):
        found = await found
    return [a.to_json() for a in found]


def state_families(state: ScrapeState) -> list[Metric]:
    """The scrape-time gauges, as metric families (pure)."""
    states = [p.value for p in Phase]
    breaker = GaugeMetricFamily(
        "thrifty_breaker_state", "Circuit breaker of each deployment: 1 for its current state "
        "(closed, half_open, open), 0 for the others.",
        labels=["deployment", "provider", "model", "state"])
    for deployment, provider, model, current in state.breakers:
        for s in states:
            breaker.add_metric([deployment, provider, model, s], 1.0 if s == current else 0.0)
    remaining = GaugeMetricFamily(
        "thrifty_budget_remaining", "What is left of each budget or rate limit in its current "
        "window (settled and in-flight reservations deducted); USD for usd limits.",
        labels=["limit", "resource", "window"])
    amount = GaugeMetricFamily(
        "thrifty_budget_limit", "Each budget or rate limit's amount per window; USD for usd "
        "limits.", labels=["limit", "resource", "window"])
    for lim, settled, reserved in state.budgets:
        scale = _NANO if lim.resource == "usd" else 1.0
        labels = [lim.id, lim.resource, lim.window]
        remaining.add_metric(labels, (lim.amount - settled - reserved) * scale)
        amount.add_metric(labels, lim.amount * scale)
    drift = GaugeMetricFamily(
        "thrifty_drift_alert", "1 for every active drift alert (a model whose behaviour or "
        "cost moved away from its baseline).", labels=["provider", "model", "signal"])
    for alert in state.drift:
        drift.add_metric([str(alert.get("provider")), str(alert.get("model")),
                          str(alert.get("signal"))], 1.0)
    return [breaker, remaining, amount, drift]


class _Families(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def exposition(state: ScrapeState, metrics: Metrics, multiproc_dir: str | None) -> bytes:
    """The Prometheus text: every worker's series when ``multiproc_dir`` is set (from the
    shared files), this process's otherwise, then the scrape-time gauges."""
    if multiproc_dir:
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
        series = generate_latest(registry)
    else:
        series = generate_latest(metrics.registry)
    extra = CollectorRegistry()
    extra.register(_Families(state_families(state)))
    return series + generate_latest(extra)


async def render(gw: Gateway, metrics: Metrics, multiproc_dir: str | None) -> bytes:
    state = await gather_state(gw, metrics.limits_seen)
    metrics.flush()
    # reading every worker's files is blocking I/O: keep it off the event loop
    return await asyncio.to_thread(exposition, state, metrics, multiproc_dir)
