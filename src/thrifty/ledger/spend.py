"""Spend summaries as a rich table or JSON-ready dicts, for ``thrifty spend`` and the demo.

Pure formatting over ``SpendRow``s: no queries here, and rich is imported only when a table
is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from thrifty.ledger.store import SpendRow, spend_total

if TYPE_CHECKING:
    from rich.table import Table

_HEADINGS = {
    "model": "provider/model",
    "requested": "requested model",
    "provider": "provider",
    "day": "day (UTC)",
    "key": "key",
    "status": "status",
}
_TABLE_CENTS = Decimal("0.000001")  # a cheap call costs a few micro-dollars: keep them visible


def spend_json(rows: Sequence[SpendRow]) -> list[dict[str, str | int | float]]:
    """One dict per row; cost is the exact Decimal as a fixed-point string (no exponent)."""
    return [_row_json(row) for row in rows]


def spend_total_json(rows: Sequence[SpendRow]) -> dict[str, str | int | float]:
    """The totals of ``rows`` in the same shape as one ``spend_json`` row."""
    return _row_json(spend_total(rows))


def _row_json(row: SpendRow) -> dict[str, str | int | float]:
    return {
        "group": row.group,
        "requests": row.requests,
        "errors": row.errors,
        "input_tokens": row.input_tokens,
        "cached_input_tokens": row.cached_input_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "output_tokens": row.output_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost_usd": f"{row.cost:f}",
        "avg_latency_ms": round(row.avg_latency_ms, 3),
        "max_latency_ms": round(row.max_latency_ms, 3),
    }


def spend_table(rows: Sequence[SpendRow], by: str, title: str | None = None) -> Table:
    """A table of ``rows`` with a totals row at the bottom. Cache and reasoning token columns
    are left out when every row has zero of them, so the common case fits a terminal."""
    from rich.table import Table

    total = spend_total(rows)
    columns = [c for c in _COLUMNS if not (c.optional and c.cell(total) == "0")]
    table = Table(title=title, title_justify="left")
    table.add_column(_HEADINGS.get(by, by), no_wrap=True)
    for column in columns:
        table.add_column(column.heading, justify="right", no_wrap=True)
    for i, row in enumerate(rows):
        table.add_row(row.group, *(c.cell(row) for c in columns), end_section=i == len(rows) - 1)
    table.add_row(total.group, *(c.cell(total) for c in columns), style="bold")
    return table


@dataclass(frozen=True, slots=True)
class _Column:
    heading: str
    cell: Callable[[SpendRow], str]
    optional: bool = False


_COLUMNS = (
    _Column("requests", lambda r: f"{r.requests:,}"),
    _Column("errors", lambda r: f"{r.errors:,}"),
    _Column("input", lambda r: f"{r.input_tokens:,}"),
    _Column("cached", lambda r: f"{r.cached_input_tokens:,}", optional=True),
    _Column("cache write", lambda r: f"{r.cache_write_tokens:,}", optional=True),
    _Column("output", lambda r: f"{r.output_tokens:,}"),
    _Column("reasoning", lambda r: f"{r.reasoning_tokens:,}", optional=True),
    _Column("cost (USD)", lambda r: f"{r.cost.quantize(_TABLE_CENTS):,f}"),
    _Column("avg ms", lambda r: f"{r.avg_latency_ms:,.0f}"),
    _Column("max ms", lambda r: f"{r.max_latency_ms:,.0f}"),
)
