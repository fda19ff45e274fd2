"""Budget usage per scope: each limit rule against what the ledger recorded in the rule's
current window.

The ledger is the honest source here: it holds every finished request of every replica. The
enforcing counters also hold reservations of requests still running, so right after a burst
they can read a little higher; this view says what was spent, not what is held.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from thrifty.insights.db import InsightsDB
from thrifty.insights.filters import NONE_LABEL, Filters, Source, source_for, where
from thrifty.limits.model import window_bounds
from thrifty.limits.rules import EACH, LimitRule

_SCOPE_DIM = {"team": "team", "key": "key", "model": "requested", "provider": "provider"}
_SCOPE_COLUMN = {"team": "team", "key": "key_id", "model": "requested_model",
                 "provider": "provider"}
_MEASURE = {"usd": "cost_nano_usd", "requests": "n", "input_tokens": "input_tokens",
            "output_tokens": "output_tokens"}
EACH_SHOWN = 5
"""For a ``'*'`` rule (one budget per team, key...), the most used values shown."""


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    scope: str
    """``global``, or ``team=search`` and the like."""
    resource: str
    window: str
    limit: int
    """In the counters' units: nano-USD for ``usd``, else a count."""
    used: int
    origin: str
    """Where the rule comes from: ``config``, ``team budget``, ``key budget``."""
    window_start: float

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else math.inf if self.used else 0.0


def budget_usage(db: InsightsDB, rules: Sequence[tuple[LimitRule, str]], now: float
                 ) -> list[BudgetUsage]:
    """Usage of every rule, fullest first."""
    out: list[BudgetUsage] = []
    for rule, origin in rules:
        start, end = window_bounds(rule.window, now)
        filters = Filters(since=start, until=end if math.isfinite(end) else None)
        for scope, used in _used(db, rule, filters):
            out.append(BudgetUsage(scope, rule.resource, rule.window, rule.units, used,
                                   origin, start))
    out.sort(key=lambda u: u.share, reverse=True)
    return out


def _used(db: InsightsDB, rule: LimitRule, filters: Filters) -> list[tuple[str, int]]:
    if rule.scope == "global":
        return [("global", _total(db, rule, filters))]
    if rule.scope == "tag":
        return [(f"tag={rule.value}", _tag_total(db, rule, filters))] if rule.value != EACH \
            else []
    dim = _SCOPE_DIM[rule.scope]
    if rule.value != EACH:
        value = rule.value or NONE_LABEL[dim]
        return [(f"{rule.scope}={value}", _total(db, rule, filters.but(**{dim: value})))]
    src = source_for(filters, db.dialect)
    w, params = where(filters, src)
    measure = src.sum(_MEASURE[rule.resource])
    column = src.col(_SCOPE_COLUMN[rule.scope])  # a request without one has no such budget
    sql = (f"SELECT {src.dim(dim)} AS g, {measure} AS u FROM {src.table} {w} "
           f"AND {column} != '' GROUP BY g ORDER BY u DESC, g LIMIT {EACH_SHOWN}")
    return [(f"{rule.scope}={g}", int(u or 0)) for g, u in db.fetch(sql, params)]


def _total(db: InsightsDB, rule: LimitRule, filters: Filters) -> int:
    src = source_for(filters, db.dialect)
    w, params = where(filters, src)
    rows = db.fetch(f"SELECT {src.sum(_MEASURE[rule.resource])} FROM {src.table} {w}", params)
    return int(rows[0][0] or 0) if rows else 0


def _tag_total(db: InsightsDB, rule: LimitRule, filters: Filters) -> int:
    """Tags live only on request rows, as a JSON array of strings."""
    src = Source("requests", False, db.dialect)
    w, params = where(filters, src)
    sql = (f"SELECT {src.sum(_MEASURE[rule.resource])} FROM requests {w} "
           f"AND tags LIKE {db.dialect.mark}")
    rows = db.fetch(sql, [*params, f'%"{rule.value}"%'])
    return int(rows[0][0] or 0) if rows else 0
