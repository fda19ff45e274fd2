"""The dashboard's aggregate and row queries, each one SQL statement over the rollup or the
request rows (see ``filters.source_for``), returning typed rows. Money stays integer
nano-dollars here; formatting is the UI's and the report's business.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from thrifty.insights.db import InsightsDB
from thrifty.insights.filters import (
    DAY,
    DIMENSIONS,
    HOUR,
    Bucket,
    Filters,
    Source,
    source_for,
    where,
)
from thrifty.ledger.store import ERROR_STATUS

TOKENS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")
ANSWER_TOKENS = ("answer_input_tokens", "answer_cached_tokens", "answer_cache_write_tokens",
                 "answer_output_tokens")


@dataclass(frozen=True, slots=True)
class Tokens:
    input: int = 0
    cached: int = 0
    cache_write: int = 0
    output: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.input + other.input, self.cached + other.cached,
                      self.cache_write + other.cache_write, self.output + other.output)


@dataclass(frozen=True, slots=True)
class DeploymentStats:
    """One served deployment (``provider/model``; empty for requests refused before routing)
    over the window."""

    provider: str
    model: str
    requests: int
    errors: int
    multi: int
    """Requests that needed more than one upstream call (fallbacks, retries, escalations)."""
    cascade: int
    cascade_multi: int
    cost_nano: int
    answered_cost_nano: int
    """Cost of the requests that got an answer (status < 400), every call included."""
    answer_tokens: Tokens
    """Tokens of the calls that answered the answered requests (for savings)."""
    tokens: Tokens
    latency_ms_sum: float
    ttft_n: int
    ttft_ms_sum: float

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}" if self.model else "(unrouted)"


def deployment_stats(db: InsightsDB, filters: Filters) -> list[DeploymentStats]:
    src = source_for(filters, db.dialect)
    w, params = where(filters, src)
    ok = f"status < {ERROR_STATUS}"
    cascade = f"{src.col('policy')} = 'cascade'"
    multi = f"{src.col('multi')} = 1"
    sql = f"""
        SELECT {src.col('provider')}, {src.col('upstream_model')}, {src.sum('n')},
               {src.sum('n', f'status >= {ERROR_STATUS}')}, {src.sum('n', multi)},
               {src.sum('n', cascade)}, {src.sum('n', f'{cascade} AND {multi}')},
               {src.sum('cost_nano_usd')}, {src.sum('cost_nano_usd', ok)},
               {', '.join(src.sum(t) for t in ANSWER_TOKENS)},
               {', '.join(src.sum(t) for t in TOKENS)},
               {src.sum('latency_ms')}, {src.sum('ttft_n')}, {src.sum('ttft_ms')}
        FROM {src.table} {w}
        GROUP BY 1, 2 ORDER BY 8 DESC, 1, 2
    """
    stats = [_deployment(row) for row in db.fetch(sql, params)]
    if src.rollup:
        return stats
    answers = answered_multi_tokens(db, filters)
    return [replace(s, answer_tokens=s.answer_tokens + answers.get((s.provider, s.model),
                                                                   Tokens()))
            for s in stats]


def _deployment(row: tuple[Any, ...]) -> DeploymentStats:
    ints = [int(v or 0) for v in row[2:17]]
    return DeploymentStats(
        provider=str(row[0]), model=str(row[1]), requests=ints[0], errors=ints[1],
        multi=ints[2], cascade=ints[3], cascade_multi=ints[4], cost_nano=ints[5],
        answered_cost_nano=ints[6], answer_tokens=Tokens(*ints[7:11]),
        tokens=Tokens(*ints[11:15]), latency_ms_sum=float(row[17] or 0),
        ttft_n=int(row[18] or 0), ttft_ms_sum=float(row[19] or 0))


def answered_multi_tokens(db: InsightsDB, filters: Filters) -> dict[tuple[str, str], Tokens]:
    """Per served deployment, the tokens of the answering (``accepted``) call of every
    answered request that made several calls: what one call to a baseline model would have
    processed (the cheaper tiers and failed attempts before it are the routing's own cost).
    The rollup keeps the same sums by trigger; this is for windows it cannot answer."""
    src = Source("requests", False, db.dialect, alias="r")
    w, params = where(filters, src)
    sql = f"""
        SELECT r.provider, r.upstream_model, {', '.join(f'SUM(a.{t})' for t in TOKENS)}
        FROM requests r JOIN attempts a ON a.request_id = r.request_id
        {w} AND r.calls > 1 AND r.status < {ERROR_STATUS} AND a.verdict = 'accepted'
        GROUP BY 1, 2
    """
    return {(str(p), str(m)): Tokens(*(int(v or 0) for v in rest))
            for p, m, *rest in db.fetch(sql, params)}


@dataclass(frozen=True, slots=True)
class SeriesRow:
    start: float
    """Unix seconds at the start of the bucket (UTC)."""
    group: str
    cost_nano: int
    requests: int
    errors: int


def series(db: InsightsDB, filters: Filters, dim: str, bucket: Bucket) -> list[SeriesRow]:
    """Spend per time bucket and value of ``dim``, oldest bucket first."""
    if dim not in DIMENSIONS:
        raise ValueError(f"cannot group by {dim!r}; choose one of {', '.join(DIMENSIONS)}")
    src = source_for(filters, db.dialect, bucket=bucket)
    size = DAY if bucket == "day" else HOUR
    start = "day" if src.rollup else db.dialect.floor_div("ts", size)
    w, params = where(filters, src)
    sql = f"""
        SELECT {start} AS b, {src.dim(dim)} AS g, {src.sum('cost_nano_usd')}, {src.sum('n')},
               {src.sum('n', f'status >= {ERROR_STATUS}')}
        FROM {src.table} {w} GROUP BY b, g ORDER BY b, g
    """
    return [SeriesRow(float(int(b) * size), str(g), int(c or 0), int(n or 0), int(e or 0))
            for b, g, c, n, e in db.fetch(sql, params)]


@dataclass(frozen=True, slots=True)
class RequestRow:
    request_id: str
    ts: float
    requested_model: str
    provider: str | None
    upstream_model: str | None
    status: int
    key_id: str | None
    team: str | None
    route: str | None
    input_tokens: int
    output_tokens: int
    cost_nano: int
    latency_ms: float
    calls: int
    error_type: str | None

    @property
    def model(self) -> str:
        return f"{self.provider}/{self.upstream_model}" if self.upstream_model else "(unrouted)"


_ROW_COLUMNS = ("request_id, ts, requested_model, provider, upstream_model, status, key_id, "
                "team, route, input_tokens, output_tokens, cost_nano_usd, latency_ms, calls, "
                "error_type")


def request_rows(db: InsightsDB, filters: Filters, *, order: str = "cost", limit: int = 20,
                 offset: int = 0) -> list[RequestRow]:
    """Individual requests, the costliest first (``order='cost'``, walking the cost index)
    or the newest first (``order='recent'``)."""
    src = Source("requests", False, db.dialect)
    w, params = where(filters, src)
    by = {"cost": "cost_nano_usd DESC, ts DESC", "recent": "ts DESC"}[order]
    m = db.dialect.mark
    sql = f"SELECT {_ROW_COLUMNS} FROM requests {w} ORDER BY {by} LIMIT {m} OFFSET {m}"
    return [_request_row(r) for r in db.fetch(sql, [*params, int(limit), int(offset)])]


def _request_row(r: tuple[Any, ...]) -> RequestRow:
    return RequestRow(str(r[0]), float(r[1]), str(r[2]), r[3], r[4], int(r[5]), r[6], r[7],
                      r[8], int(r[9]), int(r[10]), int(r[11]), float(r[12]), int(r[13]), r[14])


_DETAIL_COLUMNS = ("request_id", "ts", "requested_model", "provider", "upstream_model",
                   "status", "stream", "key_id", "team", "tags", "input_tokens",
                   "cached_input_tokens", "cache_write_tokens", "output_tokens",
                   "reasoning_tokens", "cost_nano_usd", "latency_ms", "ttft_ms", "error_type",
                   "route", "usage_known", "trace", "calls")
_ATTEMPT_COLUMNS = ("n", "tier", "provider", "upstream_model", "status", "error_type",
                    "input_tokens", "cached_input_tokens", "cache_write_tokens",
                    "output_tokens", "cost_nano_usd", "latency_ms", "verdict")


def request_detail(db: InsightsDB, request_id: str
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """One ledger row and its upstream calls, or None for an unknown id."""
    m = db.dialect.mark
    rows = db.fetch(f"SELECT {', '.join(_DETAIL_COLUMNS)} FROM requests "
                    f"WHERE request_id = {m}", [request_id])
    if not rows:
        return None
    attempts = db.fetch(f"SELECT {', '.join(_ATTEMPT_COLUMNS)} FROM attempts "
                        f"WHERE request_id = {m} ORDER BY n", [request_id])
    return (dict(zip(_DETAIL_COLUMNS, rows[0], strict=True)),
            [dict(zip(_ATTEMPT_COLUMNS, a, strict=True)) for a in attempts])


def dimension_values(db: InsightsDB, filters: Filters, dim: str, limit: int = 50
                     ) -> list[str]:
    """The values of ``dim`` seen in the window, the biggest spenders first (for pickers)."""
    src = source_for(filters, db.dialect)
    w, params = where(filters, src)
    sql = (f"SELECT {src.dim(dim)} AS g, {src.sum('cost_nano_usd')} AS c FROM {src.table} "
           f"{w} GROUP BY g ORDER BY c DESC, g LIMIT {int(limit)}")
    return [str(g) for g, _ in db.fetch(sql, params)]
