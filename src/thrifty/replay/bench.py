"""``thrifty bench routing``: replay a routing dataset through a policy, pool by pool, and
report quality, dollars and calls per prompt against the best single model.

The policy runs inside a real :class:`Gateway` (planner, cascade executor, pricing) whose
executor answers from the record: the same code that serves live traffic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from thrifty.config.schema import RouteConfig, Settings
from thrifty.core.request import ChatRequest
from thrifty.errors import ConfigError, ThriftyError
from thrifty.pricing.price import ModelInfo, Price
from thrifty.providers.base import Target
from thrifty.replay.dataset import Pool, Row, best_single
from thrifty.replay.executor import ReplayExecutor

_CAPS = frozenset({"tools", "vision", "json_schema", "streaming"})


@dataclass(frozen=True, slots=True)
class PoolResult:
    pool: str
    rows: int
    quality: float
    cost: Decimal
    calls_per_prompt: float
    best_model: str
    best_quality: float
    best_cost: Decimal
    choices: Mapping[str, str]
    """Row id -> the model whose answer was returned."""

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "quality": round(self.quality, 4),
                "cost": float(round(self.cost, 6)),
                "calls_per_prompt": round(self.calls_per_prompt, 3),
                "best_single": {"model": self.best_model,
                                "quality": round(self.best_quality, 4),
                                "cost": float(round(self.best_cost, 6))}}


def replay_targets(models: Sequence[str], prices: Mapping[str, Price]) -> dict[str, Target]:
    missing = [m for m in models if m not in prices]
    if missing:
        raise ConfigError(f"the price file has no price for {', '.join(missing)}")
    return {m: Target(model=m, provider="replay", wire="openai", upstream_model=m,
                      base_url="replay://", info=ModelInfo("replay", m, prices[m], 1_000_000,
                                                           100_000, _CAPS, "price file"))
            for m in models}


def runtime_for(pool: Pool, prices: Mapping[str, Price], routes_cfg: Mapping[str, RouteConfig],
                base_dir: Path | None) -> Any:
    """A runtime whose only provider is the record, serving the pool's models and the
    policy's routes."""
    from thrifty.config.drift import DriftConfig
    from thrifty.config.resolve import Runtime
    from thrifty.pricing.catalog import Catalog
    from thrifty.routing.build import build_policy
    from thrifty.routing.policies import Direct
    from thrifty.routing.table import Route, RouteTable

    targets = replay_targets(pool.models, prices)
    routes = {m: Route(m, "model", (t,), Direct(t))
              for m, t in targets.items()}
    table = RouteTable(routes)
    for name, cfg in routes_cfg.items():
        policy, used = build_policy(name, cfg, targets, table, base_dir=base_dir)
        routes[name] = Route(name, "alias", used, policy)
    # replayed rows are not live traffic: no drift watch (its alerts would be noise)
    return Runtime(Settings(drift=DriftConfig(enabled=False)), {}, table, Catalog("replay"))


async def run_pool(pool: Pool, prices: Mapping[str, Price], routes: Mapping[str, RouteConfig],
                   under_test: str, base_dir: Path | None = None, seed: int = 0) -> PoolResult:
    import random

    from thrifty.engine.gateway import Gateway

    runtime = runtime_for(pool, prices, routes, base_dir)
    by_id = {r.id: r for r in pool.rows}
    gw = Gateway(runtime, executor=ReplayExecutor(by_id), rng=random.Random(seed))
    quality, cost, calls = 0.0, Decimal(0), 0
    choices: dict[str, str] = {}
    for row in pool.rows:
        req = ChatRequest(body={"model": under_test, "messages": [
            {"role": "user", "content": row.prompt}]}, model=under_test, stream=False,
            include_usage=False, request_id=row.id)
        try:
            reply = await gw.complete(req)
        except ThriftyError as exc:
            raise ConfigError(f"row {row.id}: the policy failed: {exc.message}") from None
        chosen = reply.target.upstream_model
        choices[row.id] = chosen
        quality += row.models[chosen].quality
        cost += reply.outcome.cost
        calls += len(reply.outcome.calls)
    n = len(pool.rows)
    best, bq, bc = best_single(pool, prices)
    return PoolResult(pool.name, n, quality / n, cost, calls / n, best, bq, bc, choices)


def rows_by_id(rows: Sequence[Row]) -> dict[str, Row]:
    return {r.id: r for r in rows}
