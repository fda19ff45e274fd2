"""The per-request Prometheus series and the observer that feeds them.

Runs on the request path (``Gateway.record``), so it is written for speed: figures are
added to local accumulators (``tally``) that ``flush`` moves into the series; labelled
children are looked up once per distinct label tuple and cached; label values come from
bounded caches; per-call figures come from the already-priced ledger row (no Decimal
arithmetic); zero increments are skipped. With several workers, prometheus_client's
multiprocess mode keeps the series in shared files (see ``multiproc``); state read at
scrape time (breakers, budgets, drift) lives in ``scrape``, not here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram

from thrifty.config.telemetry import MetricsConfig
from thrifty.limits.model import Limit
from thrifty.telemetry.labels import NONE, BoundedValues, RouteNames, upstream_error_class
from thrifty.telemetry.overhead import overhead_ms
from thrifty.telemetry.tally import Count, Hist

if TYPE_CHECKING:
    from thrifty.engine.account import Outcome
    from thrifty.ledger.entry import AttemptRow, LedgerEntry

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25)
TOKEN_TYPES = ("input", "cached_input", "cache_write", "output", "reasoning")
CACHE_KINDS = ("exact", "semantic")
_NANO = 1e-9


@dataclass(slots=True)
class _RequestSeries:
    requests: Count
    timing: tuple[str, ...]
    """Label values of the histograms, whose children are made on first use (a series
    that was never observed is not exported)."""
    duration: Hist | None = None
    ttft: Hist | None = None


@dataclass(slots=True)
class _CallSeries:
    labels: tuple[str, ...]
    tokens: list[Count | None]
    """One per ``TOKEN_TYPES`` entry, in that order, made on first use."""
    cost: Count | None = None


class Metrics:
    """The series of one gateway process. ``request_done`` makes it an observer."""

    def __init__(self, cfg: MetricsConfig, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        lab = cfg.labels
        self._on = (lab.route, lab.team, lab.key)
        scope = [n for n, on in zip(("route", "team", "key"), self._on, strict=True) if on]
        self._routes = RouteNames(lab.max_values)
        self._teams = BoundedValues(lab.max_values)
        self._keys = BoundedValues(lab.max_values)
        self._codes = BoundedValues(min(lab.max_values, 50))
        self._limit_cap = lab.max_values
        self.limits_seen: dict[Limit, None] = {}
        """Budget limits requests counted against (bounded): scrape reports their headroom."""
        self._req: dict[tuple[str | int, ...], _RequestSeries] = {}
        self._call: dict[tuple[str, ...], _CallSeries] = {}
        self._rare: dict[tuple[object, ...], Count] = {}
        self._tallies: list[Count | Hist] = []
        self._define(scope)

    def _define(self, scope: list[str]) -> None:
        r, by = self.registry, ["provider", "model"]
        timing = [*by, "route"] if self._on[0] else by
        route = ["route"] if self._on[0] else []
        self.requests = Counter(
            "thrifty_requests", "Requests answered, by the provider and upstream model that "
            "answered last and the HTTP status sent to the client.",
            [*by, *scope, "status"], registry=r)
        self.tokens = Counter(
            "thrifty_tokens", "Tokens billed by upstream calls (every call, including failed "
            "cascade tiers and hedges). input includes cached_input and cache_write; output "
            "includes reasoning.", [*by, *scope, "type"], registry=r)
        self.cost = Counter("thrifty_cost_usd", "USD billed by upstream calls, as priced in "
                            "the ledger.", [*by, *scope], registry=r)
        self.duration = Histogram(
            "thrifty_request_duration_seconds", "Request latency as the gateway measured it "
            "(for a stream, until its last byte).", timing, buckets=LATENCY_BUCKETS,
            registry=r)
        self.ttft = Histogram(
            "thrifty_time_to_first_token_seconds", "Streaming requests: time until the first "
            "token was ready to send.", timing, buckets=TTFT_BUCKETS, registry=r)
        self.overhead = Histogram(
            "thrifty_gateway_overhead_seconds", "Time spent in thrifty itself, excluding "
            "upstream: for JSON, latency minus the time covered by upstream calls; for "
            "streams, time to first token minus the time upstream calls took to their first "
            "token. Requests that never called upstream are not counted.", ["stream"],
            buckets=OVERHEAD_BUCKETS, registry=r)
        self.upstream_errors = Counter(
            "thrifty_upstream_errors", "Failed upstream calls by error class (rate_limit, "
            "server, timeout, connection, auth, bad_response, client, cancelled).",
            [*by, "class"], registry=r)
        self.request_errors = Counter(
            "thrifty_request_errors", "Requests answered with an error, by error code "
            "(the OpenAI-style code sent to the client).", [*route, "code"], registry=r)
        self.fallbacks = Counter(
            "thrifty_fallbacks", "Upstream calls beyond the first in fallback mode (retries, "
            "failover to another deployment or model, hedges).", route, registry=r)
        self.escalations = Counter(
            "thrifty_cascade_escalations", "Cascade tiers whose answer failed its checks, so "
            "the request went on to the next tier.", route, registry=r)
        self.cache_hits = Counter(
            "thrifty_cache_hits", "Requests answered from a response cache.", ["cache"],
            registry=r)
        for kind in CACHE_KINDS:
            self.cache_hits.labels(kind)  # the series exist (at 0) before the first hit
        self._overhead = (self._hist(self.overhead, ("false",), OVERHEAD_BUCKETS),
                          self._hist(self.overhead, ("true",), OVERHEAD_BUCKETS))

    def flush(self) -> None:
        """Move what requests added into the Prometheus series (before a scrape, and
        periodically when other workers' scrapes read them from the shared files)."""
        for tally in self._tallies:
            tally.flush()

    # -- the observer ------------------------------------------------------------------------

    def request_done(self, outcome: Outcome, entry: LedgerEntry) -> None:
        on = self._on
        req = outcome.req
        route = self._routes(outcome.route) if on[0] else ""
        scope = (route, self._teams(req.team) if on[1] else "",
                 self._keys(req.key_id) if on[2] else "")
        provider, model = entry.provider or NONE, entry.upstream_model or NONE
        status = entry.status
        series = self._req.get((provider, model, *scope, status))
        if series is None:
            series = self._request_series(provider, model, scope, status)
        series.requests.value += 1
        calls = outcome.calls
        if calls:
            (series.duration or self._timing(series)).observe(entry.latency_ms / 1000)
            if req.stream and entry.ttft_ms is not None:
                (series.ttft or self._timing(series, ttft=True)).observe(entry.ttft_ms / 1000)
            self._overhead[req.stream].observe(
                overhead_ms(calls, outcome.latency_ms, outcome.ttft_ms) / 1000)
            for attempt in entry.attempts:
                self._attempt(attempt, scope)
            if len(calls) > 1:
                self._extra_calls(outcome, route)
        if status >= 400:
            code = self._codes(entry.error_type)
            self._count(self.request_errors, (route, code) if on[0] else (code,)).value += 1
        if outcome.limits and len(self.limits_seen) < self._limit_cap:
            for limit in outcome.limits:
                self.limits_seen[limit] = None

    def _attempt(self, a: AttemptRow, scope: tuple[str, str, str]) -> None:
        cs = self._call.get((a.provider, a.upstream_model, *scope))
        if cs is None:
            cs = self._call_series(a.provider, a.upstream_model, scope)
        tokens = cs.tokens
        if a.input_tokens:
            (tokens[0] or self._token(cs, 0)).value += a.input_tokens
            if a.cached_input_tokens:
                (tokens[1] or self._token(cs, 1)).value += a.cached_input_tokens
            if a.cache_write_tokens:
                (tokens[2] or self._token(cs, 2)).value += a.cache_write_tokens
        if a.output_tokens:
            (tokens[3] or self._token(cs, 3)).value += a.output_tokens
            if a.reasoning_tokens:
                (tokens[4] or self._token(cs, 4)).value += a.reasoning_tokens
        if a.cost_nano_usd:
            if cs.cost is None:
                cs.cost = self._count(self.cost, cs.labels)
            cs.cost.value += a.cost_nano_usd * _NANO
        if a.status >= 400:
            cls = upstream_error_class(a.status, a.error_type)
            self._count(self.upstream_errors, (a.provider, a.upstream_model, cls)).value += 1

    def _extra_calls(self, outcome: Outcome, route: str) -> None:
        labels = (route,) if self._on[0] else ()
        plan = outcome.trace.plan
        if plan is not None and plan.get("mode") == "cascade":
            n = sum(1 for c in outcome.calls
                    if c.verdict is not None and c.verdict.startswith("escalated"))
            if n:
                self._count(self.escalations, labels).value += n
        else:
            self._count(self.fallbacks, labels).value += len(outcome.calls) - 1

    def cache_hit(self, kind: str = "exact") -> None:
        """For a response cache to call when it answers a request."""
        self._count(self.cache_hits, (kind,)).value += 1

    # -- cached children ---------------------------------------------------------------------

    def _enabled(self, scope: tuple[str, str, str]) -> tuple[str, ...]:
        return tuple(v for v, on in zip(scope, self._on, strict=True) if on)

    def _request_series(self, provider: str, model: str, scope: tuple[str, str, str],
                        status: int) -> _RequestSeries:
        timing = (provider, model, scope[0]) if self._on[0] else (provider, model)
        labels = (provider, model, *self._enabled(scope), str(status))
        series = _RequestSeries(self._count(self.requests, labels), timing)
        self._req[(provider, model, *scope, status)] = series
        return series

    def _timing(self, series: _RequestSeries, ttft: bool = False) -> Hist:
        if ttft:
            series.ttft = self._hist(self.ttft, series.timing, TTFT_BUCKETS)
            return series.ttft
        series.duration = self._hist(self.duration, series.timing, LATENCY_BUCKETS)
        return series.duration

    def _call_series(self, provider: str, model: str,
                     scope: tuple[str, str, str]) -> _CallSeries:
        series = _CallSeries((provider, model, *self._enabled(scope)), [None] * len(TOKEN_TYPES))
        self._call[(provider, model, *scope)] = series
        return series

    def _token(self, series: _CallSeries, index: int) -> Count:
        count = self._count(self.tokens, (*series.labels, TOKEN_TYPES[index]))
        series.tokens[index] = count
        return count

    def _count(self, metric: Counter, labels: tuple[str, ...]) -> Count:
        """The accumulator of one counter series (a dict lookup once it exists)."""
        key = (metric, *labels)
        count = self._rare.get(key)
        if count is None:
            count = self._rare[key] = Count(metric.labels(*labels))
            self._tallies.append(count)
        return count

    def _hist(self, metric: Histogram, labels: tuple[str, ...],
              bounds: tuple[float, ...]) -> Hist:
        hist = Hist(metric.labels(*labels), bounds)
        self._tallies.append(hist)
        return hist
