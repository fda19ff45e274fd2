"""Turns insights views into page context and HTML (Jinja2 templates shipped in the package,
autoescaped): shared by the dashboard handlers and the self-contained HTML report.

Pure apart from reading the templates and static files of the package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from thrifty.insights.filters import DAY, HOUR, Bucket, Filters
from thrifty.insights.views import HealthView, SpendView
from thrifty.ui import charts
from thrifty.ui.format import FILTERS, ms, usd

HERE = Path(__file__).parent
WINDOWS: dict[str, tuple[str, int]] = {
    "24h": ("last 24 hours", 0),
    "7d": ("last 7 days", 7),
    "30d": ("last 30 days", 30),
    "90d": ("last 90 days", 90),
}
"""Preset windows. Day windows are whole UTC days including today, so the rollup answers
them; 24 hours is read from the request rows, by the hour."""
DEFAULT_WINDOW = "7d"


@cache
def environment() -> Any:
    try:
        import jinja2
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise RuntimeError("the dashboard needs jinja2: pip install jinja2") from exc
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    return env


def render(template: str, **context: Any) -> str:
    return str(environment().get_template(template).render(**context))


def static_text(name: str) -> str:
    return (HERE / "static" / name).read_text(encoding="utf-8")


def window_filters(window: str, now: float,
                   dims: tuple[tuple[str, str], ...] = ()) -> tuple[Filters, Bucket, str]:
    """The filters, bucket size and label of a preset window."""
    label, days = WINDOWS.get(window, WINDOWS[DEFAULT_WINDOW])
    if days == 0:
        return Filters(since=now - DAY, dims=dims), "hour", label
    today = math.floor(now / DAY) * DAY
    return Filters(since=today - (days - 1) * DAY, dims=dims), "day", f"{label} (UTC days)"


def spend_context(view: SpendView, now: float) -> dict[str, Any]:
    """Chart, legend and tables of a spend view."""
    f = view.filters
    size = HOUR if view.bucket == "hour" else DAY
    starts = charts.bucket_starts(f.since, f.until or now, size)
    groups, values = charts.stacked_series(view.series, starts)
    chart = charts.stacked_bars(starts, groups, values, hourly=view.bucket == "hour", money=usd)
    return {"view": view, "chart": chart, "legend": charts.legend(groups),
            "savings": view.savings, "budgets": view.budgets}


def health_context(view: HealthView) -> dict[str, Any]:
    items = [(d.stats.key, [d.latency.values[0], d.latency.values[1]])
             for d in view.deployments if d.latency is not None]
    chart = charts.hbars(items, labels=["p50", "p95"], unit=ms) if items else ""
    ttft = [(d.stats.key, [d.ttft.values[0], d.ttft.values[1]])
            for d in view.deployments if d.ttft is not None]
    ttft_chart = charts.hbars(ttft, labels=["p50", "p95"], unit=ms) if ttft else ""
    return {"health": view, "latency_chart": chart, "ttft_chart": ttft_chart}


def query_string(params: Mapping[str, str], **changes: str | None) -> str:
    """``params`` with ``changes`` applied, as a URL query (for links that keep filters)."""
    from urllib.parse import urlencode

    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v})
