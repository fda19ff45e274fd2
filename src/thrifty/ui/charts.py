"""A compact SVG chart module: stacked bars over time and horizontal bars, rendered on the
server, so the dashboard and the mailed HTML report draw the same charts with no script, no
CDN and no network. Each bar carries a ``<title>`` (the browser's tooltip).

Pure: values in, escaped SVG text out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape

from thrifty.insights.queries import SeriesRow

PALETTE = ("#4f6bed", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899",
           "#84cc16", "#94a3b8")
OTHER = "other"


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value:
            return step * power
    return 10.0 * power


def stacked_series(rows: Sequence[SeriesRow], starts: Sequence[float], top: int = 6
                   ) -> tuple[list[str], dict[str, list[float]]]:
    """Groups (the ``top`` costliest, then ``other``) and each one's cost per bucket start."""
    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        totals[r.group] += r.cost_nano
    ranked = sorted(totals, key=lambda g: (-totals[g], g))
    keep = ranked if len(ranked) <= top + 1 else ranked[:top]  # no "other" of one
    groups = keep + ([OTHER] if len(ranked) > len(keep) else [])
    index = {s: i for i, s in enumerate(starts)}
    values = {g: [0.0] * len(starts) for g in groups}
    for r in rows:
        i = index.get(r.start)
        if i is None:
            continue
        g = r.group if r.group in keep else OTHER
        values[g][i] += r.cost_nano / 1e9
    return groups, values


def stacked_bars(starts: Sequence[float], groups: Sequence[str],
                 values: dict[str, list[float]], *, hourly: bool,
                 money: Callable[[float], str], width: int = 960, height: int = 280) -> str:
    """Spend per bucket, one colour per group, with y ticks in dollars and a legend."""
    left, right, top, bottom = 64, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(starts), 1)
    totals = [sum(values[g][i] for g in groups) for i in range(len(starts))]
    ymax = nice_max(max(totals, default=0.0))
    slot = plot_w / n
    bar = max(1.0, slot * 0.78)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="spend over time" xmlns="http://www.w3.org/2000/svg">']
    for k in range(5):
        v = ymax * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="grid"/><text x="{left - 6}" y="{y + 4:.1f}" class="tick" '
                     f'text-anchor="end">{escape(money(v))}</text>')
    for i, start in enumerate(starts):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        label = _when(start, hourly)
        for j, g in enumerate(groups):
            v = values[g][i]
            if v <= 0:
                continue
            h = plot_h * v / ymax
            y -= h
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                         f'height="{max(h, 0.5):.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                         f'<title>{escape(label)} · {escape(g)}: {escape(money(v))}</title>'
                         f'</rect>')
        if _labelled(i, n):
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 8}" class="tick" '
                         f'text-anchor="middle">{escape(_short(start, hourly))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(groups: Sequence[str]) -> list[tuple[str, str]]:
    """``(colour, group)`` pairs in stacking order, for the HTML legend."""
    return [(PALETTE[j % len(PALETTE)], g) for j, g in enumerate(groups)]


def hbars(items: Sequence[tuple[str, Sequence[float]]], *, labels: Sequence[str],
          unit: Callable[[float], str], width: int = 600, row: int = 22) -> str:
    """Horizontal grouped bars: one row per item, one bar per series (``labels``)."""
    left, right = 200, 90
    height = row * len(items) * max(1, len(labels)) + 10
    vmax = nice_max(max((v for _, vs in items for v in vs), default=0.0))
    plot_w = width - left - right
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg">']
    y = 5.0
    for name, vs in items:
        parts.append(f'<text x="{left - 8}" y="{y + row * 0.65:.1f}" class="label" '
                     f'text-anchor="end">{escape(name)}</text>')
        for j, v in enumerate(vs):
            w = plot_w * v / vmax if vmax else 0.0
            parts.append(f'<rect class="bar" x="{left}" y="{y + 3:.1f}" width="{max(w, 1):.1f}" '
                         f'height="{row - 8}" fill="{PALETTE[j % len(PALETTE)]}"><title>'
                         f'{escape(name)} {escape(labels[j])}: {escape(unit(v))}</title></rect>'
                         f'<text x="{left + w + 6:.1f}" y="{y + row * 0.65:.1f}" class="tick">'
                         f'{escape(labels[j])} {escape(unit(v))}</text>')
            y += row
    parts.append("</svg>")
    return "".join(parts)


def bucket_starts(since: float, until: float, size: int) -> list[float]:
    """Every bucket start from the one holding ``since`` to the one holding ``until``."""
    first = math.floor(since / size) * size
    last = math.floor((until - 1e-9) / size) * size
    count = int((last - first) // size) + 1
    return [float(first + k * size) for k in range(max(count, 0))]


def _labelled(i: int, n: int) -> bool:
    every = max(1, math.ceil(n / 12))
    return i % every == 0


def _when(ts: float, hourly: bool) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%d %H:00 UTC" if hourly else "%Y-%m-%d")


def _short(ts: float, hourly: bool) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%H:00" if hourly else "%b %d")
