"""How numbers read on the dashboard and in the report: dollars with sensible precision,
percentages, durations and UTC times. Pure."""

from __future__ import annotations

from datetime import UTC, datetime


def usd(dollars: float) -> str:
    """``$1,234``, ``$12.35``, ``$0.0042``: cents where they matter, more digits below."""
    sign = "-" if dollars < 0 else ""
    d = abs(dollars)
    if d >= 1000:
        return f"{sign}${d:,.0f}"
    if d >= 1:
        return f"{sign}${d:,.2f}"
    if d == 0:
        return "$0"
    if d >= 0.01:
        return f"{sign}${d:.3f}"
    return f"{sign}${d:.6f}".rstrip("0")


def nano(value: int | float) -> str:
    """Nano-dollars as ``usd``."""
    return usd(value / 1e9)


def pct(share: float | None, digits: int = 1) -> str:
    return "–" if share is None else f"{share * 100:.{digits}f}%"


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def num(value: int | float) -> str:
    return f"{value:,.0f}"


def when(ts: float | None) -> str:
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


FILTERS = {"usd": usd, "nano": nano, "pct": pct, "ms": ms, "num": num, "when": when}
