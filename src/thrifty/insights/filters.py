"""What a dashboard question is about (a time window and dimension filters) and where its
numbers come from: the request rows, or the daily rollup when the window is whole UTC days.

Both sources expose the same column names through ``Source.col``, so each query is written
once. Filter values never enter SQL text: they are bound parameters; dimension and column
names come only from the fixed tables below.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from thrifty.insights.db import Dialect
from thrifty.ledger.rollups import policy_sql, route_label_sql

DAY = 86_400
HOUR = 3_600
Bucket = Literal["hour", "day"]

DIMENSIONS: tuple[str, ...] = ("model", "provider", "route", "team", "key", "requested")
"""What spend can be stacked, ranked and filtered by: ``model`` is the served
``provider/model``; ``route`` the route's name; ``requested`` the model name asked for."""
_ANSWER_COLUMNS = (("input_tokens", "input_tokens"), ("cached_tokens", "cached_input_tokens"),
                   ("cache_write_tokens", "cache_write_tokens"),
                   ("output_tokens", "output_tokens"))
NONE_LABEL = {"model": "(unrouted)", "provider": "(unrouted)", "route": "(none)",
              "team": "(no team)", "key": "(no key)", "requested": "(none)"}


@dataclass(frozen=True, slots=True)
class Filters:
    """Requests with ``since <= ts < until`` whose dimensions equal every value set here
    (a dimension's ``NONE_LABEL`` selects the rows without one)."""

    since: float
    until: float | None = None
    dims: tuple[tuple[str, str], ...] = field(default=())

    def value(self, dim: str) -> str | None:
        return dict(self.dims).get(dim)

    def but(self, **dims: str | None) -> Filters:
        """These filters with ``dims`` set (or cleared with None)."""
        merged = {**dict(self.dims), **dims}
        return replace(self, dims=tuple(sorted((k, v) for k, v in merged.items() if v)))

    @property
    def whole_days(self) -> bool:
        """Whether the window is whole UTC days, so the daily rollup answers it exactly."""
        return self.since % DAY == 0 and (self.until is None or self.until % DAY == 0)


@dataclass(frozen=True, slots=True)
class Source:
    """A table with the request columns the insights queries use. ``n`` is how many requests
    a row stands for (1 for a request row); ``alias`` qualifies columns in a join."""

    table: str
    rollup: bool
    dialect: Dialect
    alias: str = ""

    def q(self, column: str) -> str:
        """A stored column, qualified by the alias."""
        return f"{self.alias}.{column}" if self.alias else column

    def col(self, name: str) -> str:
        q = self.q
        if self.rollup:
            return {"n": q("requests"), "ts": f"({q('day')} * {DAY})"}.get(name, q(name))
        d = self.dialect
        raw = {
            "n": "1",
            "day": d.floor_div(q("ts"), DAY),
            "provider": f"COALESCE({q('provider')}, '')",
            "upstream_model": f"COALESCE({q('upstream_model')}, '')",
            "route": route_label_sql(q("route"), postgres=d.postgres),
            "policy": policy_sql(q("route"), postgres=d.postgres),
            "team": f"COALESCE({q('team')}, '')",
            "key_id": f"COALESCE({q('key_id')}, '')",
            "multi": f"(CASE WHEN {q('calls')} > 1 THEN 1 ELSE 0 END)",
            "ttft_n": f"(CASE WHEN {q('ttft_ms')} IS NULL THEN 0 ELSE 1 END)",
            "ttft_ms": f"COALESCE({q('ttft_ms')}, 0)",
            # request rows know the answer's tokens only when one call made it; the
            # answering call of the others is read from the attempts (queries.py)
            **{f"answer_{a}": f"(CASE WHEN {q('calls')} <= 1 AND {q('status')} < 400 "
               f"THEN {q(t)} ELSE 0 END)" for a, t in _ANSWER_COLUMNS},
        }
        return raw.get(name, q(name))

    def dim(self, name: str) -> str:
        """The label of dimension ``name`` for grouping (NULLs become its ``NONE_LABEL``)."""
        c = self.col
        none = NONE_LABEL[name]
        if name == "model":
            return (f"CASE WHEN {c('upstream_model')} = '' THEN '(unrouted) ' || "
                    f"requested_model ELSE {c('provider')} || '/' || {c('upstream_model')} END")
        column = {"provider": "provider", "route": "route", "team": "team",
                  "key": "key_id", "requested": "requested_model"}[name]
        return f"CASE WHEN {c(column)} = '' THEN '{none}' ELSE {c(column)} END"

    def sum(self, measure: str, when: str | None = None) -> str:
        """SUM of ``measure`` (a column, or ``n`` for requests) over rows matching ``when``."""
        value = self.col(measure)
        if when is None:
            return f"SUM({value})"
        return f"SUM(CASE WHEN {when} THEN {value} ELSE 0 END)"


def source_for(filters: Filters, dialect: Dialect, *, bucket: Bucket = "day") -> Source:
    """The rollup for whole days bucketed by day, the request rows otherwise."""
    if filters.whole_days and bucket == "day":
        return Source("insights_daily", True, dialect)
    return Source("requests", False, dialect)


def where(filters: Filters, src: Source) -> tuple[str, list[object]]:
    """The WHERE clause (with its leading keyword) and its parameters."""
    m = src.dialect.mark
    clauses: list[str] = []
    params: list[object] = []
    if src.rollup:
        clauses.append(f"{src.q('day')} >= {m}")
        params.append(int(filters.since // DAY))
        if filters.until is not None:
            clauses.append(f"{src.q('day')} < {m}")
            params.append(int(filters.until // DAY))
    else:
        clauses.append(f"{src.q('ts')} >= {m}")
        params.append(float(filters.since))
        if filters.until is not None:
            clauses.append(f"{src.q('ts')} < {m}")
            params.append(float(filters.until))
    for dim, value in filters.dims:
        clause, values = _dim_clause(dim, value, src)
        clauses.append(clause)
        params.extend(values)
    return "WHERE " + " AND ".join(clauses), params


def _dim_clause(dim: str, value: str, src: Source) -> tuple[str, list[object]]:
    m = src.dialect.mark
    if dim == "model":
        if value.startswith("(unrouted)"):
            return f"{src.col('upstream_model')} = ''", []
        provider, _, model = value.partition("/")
        return (f"{src.q('provider')} = {m} AND {src.q('upstream_model')} = {m}",
                [provider, model])
    column = {"provider": "provider", "route": "route", "team": "team", "key": "key_id",
              "requested": "requested_model"}.get(dim)
    if column is None:
        raise ValueError(f"cannot filter by {dim!r}; choose one of {', '.join(DIMENSIONS)}")
    if value == NONE_LABEL[dim]:
        return f"{src.col(column)} = ''", []
    if column == "route" and not src.rollup:  # the label is derived from the full route
        return f"{src.col('route')} = {m}", [value]
    return f"{src.q(column)} = {m}", [value]
