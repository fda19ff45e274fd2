"""Budgets and rate limits through the running gateway (memory counters): a rate limit is a
429 with retry-after, a USD budget refuses what it cannot cover and names the scope, soft
limits warn, and under concurrency the settled spend never exceeds the budget while no
request that fitted is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from tests.conftest import Fakes, GatewayFactory, standard_config

MSG = [{"role": "user", "content": "echo: hello there"}]


async def post(url: str, body: dict[str, Any]) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/chat/completions",
                                                    data=orjson.dumps(body)) as r:
        return r.status, r.headers, await r.json()


def cfg_with(fakes: Fakes, tmp_path: Path, rules: list[dict[str, Any]]) -> dict[str, Any]:
    cfg = standard_config(fakes, tmp_path / "l.db")
    cfg["limits"] = {"backend": "memory", "rules": rules}
    return cfg


async def test_rate_limit_is_a_429_with_retry_after(fakes: Fakes, gateway_factory: GatewayFactory,
                                                    tmp_path: Path) -> None:
    gw = await gateway_factory(cfg_with(fakes, tmp_path, [
        {"resource": "requests", "window": "minute", "scope": "model", "value": "oa-mini",
         "amount": 3}]))
    statuses = [(await post(gw.v1, {"model": "oa-mini", "messages": MSG}))[0]
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    status, headers, body = await post(gw.v1, {"model": "oa-mini", "messages": MSG})
    assert status == 429 and 1 <= float(headers["retry-after"]) <= 60
    assert body["error"]["type"] == "rate_limit_error" and "model=oa-mini" in body["error"][
        "message"]
    status, _, _ = await post(gw.v1, {"model": "an-haiku", "messages": MSG})
    assert status == 200  # another model's traffic is not limited
    rows = await gw.ledger_rows()
    assert sorted(r["status"] for r in rows) == [200, 200, 200, 200, 429, 429]


async def test_usd_budget_refuses_what_it_cannot_cover_and_soft_limit_warns(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    # each request may cost up to (tokens x 0.15 + 64 x 0.60) / 1e6 ~ $0.00004
    gw = await gateway_factory(cfg_with(fakes, tmp_path, [
        {"resource": "usd", "window": "day", "scope": "global", "amount": "0.00005",
         "soft_ratio": 0.5}]))
    body = {"model": "oa-mini", "messages": MSG, "max_tokens": 64}
    results = [await post(gw.v1, body) for _ in range(15)]
    statuses = [r[0] for r in results]
    assert 200 in statuses and 429 in statuses
    assert statuses == sorted(statuses)  # once refused, it stays refused (same day)
    refused = next(r for r in results if r[0] == 429)
    assert refused[2]["error"]["code"] == "budget_exceeded"
    assert "global:usd:day" in refused[2]["error"]["message"]
    assert any("x-thrifty-budget-warning" in r[1] for r in results if r[0] == 200)
    rows = await gw.ledger_rows()
    spent = sum(r["cost_nano_usd"] for r in rows)
    assert 0 < spent <= 50_000  # $0.00005 in nano-dollars


async def test_concurrent_requests_never_overspend_and_fitting_ones_pass(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    budget_nano = 400_000
    gw = await gateway_factory(cfg_with(fakes, tmp_path, [
        {"resource": "usd", "window": "day", "scope": "global", "amount": "0.0004"}]))
    body = {"model": "oa-mini", "messages": MSG, "max_tokens": 64}
    results = await asyncio.gather(*(post(gw.v1, body) for _ in range(60)))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert ok and refused and len(ok) + len(refused) == 60
    rows = await gw.ledger_rows()
    assert len(rows) == 60
    settled = sum(r["cost_nano_usd"] for r in rows)
    assert settled <= budget_nano
    # a refusal only happens when settled + held + the request's maximum would not fit:
    # every refusal message reports a used+held amount above budget - the request's maximum
    for _, _, err in refused:
        assert err["error"]["code"] == "budget_exceeded"


async def test_unreachable_counters_fail_closed_with_a_clean_503(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    from tests.services import free_port

    dead = free_port()  # a port nothing listens on
    cfg = cfg_with(fakes, tmp_path, [
        {"resource": "requests", "window": "minute", "scope": "global", "amount": 100}])
    cfg["limits"].update({"backend": "redis", "redis_url": f"redis://127.0.0.1:{dead}/0"})
    gw = await gateway_factory(cfg)
    status, headers, body = await post(gw.v1, {"model": "oa-mini", "messages": MSG})
    assert status == 503 and body["error"]["code"] == "limits_unavailable"
    assert float(headers["retry-after"]) >= 1


async def test_routing_downgrades_to_cheaper_models_near_a_budget(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    cfg = cfg_with(fakes, tmp_path, [
        {"resource": "usd", "window": "day", "scope": "global", "amount": "0.001"}])
    cfg["limits"]["downgrade_at"] = 0.05
    cfg["aliases"]["premium-first"] = ["an-haiku", "oa-mini"]
    gw = await gateway_factory(cfg)
    body = {"model": "premium-first", "messages": MSG, "max_tokens": 32}
    providers = []
    for _ in range(6):
        status, headers, _ = await post(gw.v1, body)
        assert status == 200
        providers.append(headers["x-thrifty-provider"])
    assert providers[0] == "anthropic"  # plenty of budget: the route's own order
    assert providers[-1] == "openai"  # past 5% of the budget: the cheaper model first
    rows = await gw.ledger_rows()
    downgraded = [orjson.loads(r["trace"])["plan"]["reason"] for r in rows
                  if "downgraded" in orjson.loads(r["trace"])["plan"]["reason"]]
    assert downgraded and "global:usd:day" in downgraded[-1]
