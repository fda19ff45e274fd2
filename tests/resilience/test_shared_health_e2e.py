"""Two gateway replicas sharing breaker state through the real Redis: what one learns about
a failing deployment, the other acts on. And rate-limit headroom moves traffic away."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import Fakes, GatewayFactory
from tests.resilience.test_failover_e2e import MSG, config
from thrifty.resilience.headroom import Headroom


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not redis_up(), reason="no Redis listening on 127.0.0.1:6379")


async def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/chat/completions",
                                                    data=orjson.dumps(body)) as r:
        await r.read()
        return r.status, r.headers


@needs_redis
async def test_replicas_agree_on_a_down_deployment(fakes: Fakes, gateway_factory: GatewayFactory,
                                                   tmp_path: Path) -> None:
    prefix = f"thrifty:test:{uuid.uuid4().hex}:"
    health = {"backend": "redis", "redis_prefix": prefix}
    a = await gateway_factory({**config(fakes, tmp_path / "a.db"),
                               "resilience": {"health": health}})
    b = await gateway_factory({**config(fakes, tmp_path / "b.db"),
                               "resilience": {"health": health}})
    for _ in range(6):  # replica A alone sees the flaky deployment fail until it opens
        status, _ = await post(a.v1, {"model": "mini", "messages": MSG})
        assert status == 200
    status, headers = await post(b.v1, {"model": "mini", "messages": MSG})
    assert status == 200
    assert headers["x-thrifty-attempts"] == "oa-ok/gpt-4o-mini=200"  # B never tried it
    snap = await b.gateway.resilience.health.snapshot()
    assert str(snap["oa-flaky/gpt-4o-mini"].state) == "open"
    import redis.asyncio as redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = [k async for k in client.scan_iter(f"{prefix}*")]
        assert keys
        for k in keys:
            assert await client.ttl(k) > 0
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_spent_rate_limit_headroom_moves_traffic_away(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    cfg = config(fakes, tmp_path / "l.db", flaky_fault="none")
    gw = await gateway_factory(cfg)
    res = gw.gateway.resilience
    now = gw.gateway.clock.now()
    res._headroom["oa-flaky/gpt-4o-mini"] = Headroom(0, None, now + 60)
    status, headers = await post(gw.v1, {"model": "mini", "messages": MSG})
    assert status == 200 and headers["x-thrifty-attempts"] == "oa-ok/gpt-4o-mini=200"
    res._headroom["oa-flaky/gpt-4o-mini"] = Headroom(0, None, now - 1)  # reset passed
    status, headers = await post(gw.v1, {"model": "mini", "messages": MSG})
    assert headers["x-thrifty-attempts"] == "oa-flaky/gpt-4o-mini=200"
