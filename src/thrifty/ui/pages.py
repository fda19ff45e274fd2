"""The dashboard's pages: read the filters of the query string, run the insights views in a
worker thread, render a template. Authentication is ``routes.Dashboard``'s business.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from thrifty.insights.db import InsightsDB, open_insights
from thrifty.insights.filters import DIMENSIONS, Filters
from thrifty.insights.queries import dimension_values, request_detail, request_rows
from thrifty.insights.views import health_view, spend_view
from thrifty.limits.rules import LimitRule, parse_rules
from thrifty.pricing.price import Price
from thrifty.ui.render import (
    DEFAULT_WINDOW,
    WINDOWS,
    health_context,
    query_string,
    render,
    spend_context,
    window_filters,
)

if TYPE_CHECKING:
    from thrifty.engine.gateway import Gateway
    from thrifty.keys.store import KeyStore

log = logging.getLogger("thrifty.ui")
PICKERS = ("team", "key", "model", "provider", "route")
PAGE_SIZE = 50


def gateway_prices(gw: Gateway) -> dict[str, Price]:
    """``provider/model`` -> price: configured deployments first, then the catalog."""
    prices: dict[str, Price] = {}
    for route in gw.routes.routes():
        for t in route.targets:
            prices.setdefault(f"{t.provider}/{t.upstream_model}", t.info.price)
    for info in gw.runtime.catalog:
        prices.setdefault(info.key, info.price)
    return prices


def drift_alerts(gw: object) -> list[dict[str, Any]]:
    """Active drift alerts, when a drift detector is attached; never fails the page."""
    drift = getattr(gw, "drift", None)
    if drift is None:
        return []
    try:
        return [dict(a.to_json()) for a in drift.alerts()]
    except Exception:
        log.exception("drift alerts unavailable")
        return []


class Pages:
    def __init__(self, gateway: Gateway, key_store: KeyStore | None) -> None:
        self.gw = gateway
        self.key_store = key_store
        self._db: InsightsDB | None = None
        self._opening = threading.Lock()

    def db(self) -> InsightsDB | None:
        with self._opening:
            if self._db is None:
                self._db = open_insights(self.gw.runtime.settings.ledger)
            return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def _params(self, request: web.Request) -> dict[str, str]:
        q = request.query
        keep = ("window", "by", "baseline", "order", "page", *DIMENSIONS)
        return {k: str(q[k]) for k in keep if q.get(k)}

    async def overview(self, request: web.Request) -> str:
        params = self._params(request)
        now = time.time()
        filters, bucket, label = window_filters(params.get("window", DEFAULT_WINDOW), now,
                                                _dims(params))
        by = params.get("by", "model")
        if by not in DIMENSIONS:
            by = "model"
        prices = gateway_prices(self.gw)
        rules = await self._rules()
        db = self.db()
        if db is None:
            return render("error.html", message="The ledger is off (ledger.backend: none): "
                          "there is nothing to show.")

        def build() -> dict[str, Any]:
            view = spend_view(db, filters, dim=by, bucket=bucket, prices=prices,
                              baseline=params.get("baseline"), rules=rules, now=now)
            return {**spend_context(view, now), "pickers": _pickers(db, filters)}

        ctx = await asyncio.to_thread(build)
        baselines = sorted(k for k in prices if "/" in k)
        return render("overview.html", page="overview", params=params, label=label,
                      windows=WINDOWS, dims=DIMENSIONS, by=by, baselines=baselines,
                      alerts=drift_alerts(self.gw), qs=query_string, **ctx)

    async def health(self, request: web.Request) -> str:
        params = self._params(request)
        now = time.time()
        filters, _, label = window_filters(params.get("window", DEFAULT_WINDOW), now,
                                           _dims(params))
        db = self.db()
        if db is None:
            return render("error.html", message="The ledger is off: nothing to show.")

        def build() -> dict[str, Any]:
            return {**health_context(health_view(db, filters)),
                    "pickers": _pickers(db, filters)}

        ctx = await asyncio.to_thread(build)
        return render("health.html", page="health", params=params, label=label,
                      windows=WINDOWS, alerts=drift_alerts(self.gw), qs=query_string, **ctx)

    async def requests(self, request: web.Request) -> str:
        params = self._params(request)
        now = time.time()
        filters, _, label = window_filters(params.get("window", DEFAULT_WINDOW), now,
                                           _dims(params))
        order = "recent" if params.get("order") == "recent" else "cost"
        page = max(0, _int(params.get("page"), 0))
        db = self.db()
        if db is None:
            return render("error.html", message="The ledger is off: nothing to show.")
        rows = await asyncio.to_thread(request_rows, db, filters, order=order,
                                       limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE)
        pickers = await asyncio.to_thread(_pickers, db, filters)
        return render("requests.html", page="requests", params=params, label=label,
                      windows=WINDOWS, rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE,
                      order=order, page_no=page, pickers=pickers, qs=query_string)

    async def request(self, request: web.Request) -> str:
        db = self.db()
        if db is None:
            return render("error.html", message="The ledger is off: nothing to show.")
        found = await asyncio.to_thread(request_detail, db, request.match_info["request_id"])
        if found is None:
            raise web.HTTPNotFound(text="no such request in the ledger")
        row, attempts = found
        return render("request.html", page="requests", row=row, attempts=attempts,
                      trace=_pretty(row.get("trace")), params={}, qs=query_string)

    async def _rules(self) -> list[tuple[LimitRule, str]]:
        rules = [(r, "config") for r in self.gw.budgets.rules]
        store = self.key_store
        if store is None:
            return rules
        try:
            keys = await store.list()
            for key in keys:
                rules.extend((r, "key budget") for r in _scoped("key", key.id, key.budgets))
            for team in sorted({k.team for k in keys}):
                budgets = await store.team_budgets(team)
                rules.extend((r, "team budget") for r in _scoped("team", team, budgets))
        except Exception:
            log.exception("key budgets unavailable for the dashboard")
        return rules


def _scoped(scope: str, value: str, budgets: Sequence[Mapping[str, object]]
            ) -> tuple[LimitRule, ...]:
    if not budgets:
        return ()
    return parse_rules([{**dict(b), "scope": scope, "value": value} for b in budgets],
                       where=f"budgets of {scope} {value}")


def _pickers(db: InsightsDB, filters: Filters) -> dict[str, list[str]]:
    """The choices of each filter: the values seen in the window under the other filters."""
    return {dim: dimension_values(db, filters.but(**{dim: None}), dim, limit=40)
            for dim in PICKERS}


def _dims(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((d, params[d]) for d in DIMENSIONS if params.get(d)))


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _pretty(trace: object) -> str | None:
    if not isinstance(trace, str):
        return None
    import orjson

    try:
        return orjson.dumps(orjson.loads(trace), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return trace
