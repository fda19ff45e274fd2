"""``GET /metrics`` on the real app in front of fake providers: the totals agree with the
ledger, a failing deployment shows up as fallbacks, upstream errors and an open breaker,
budget headroom and drift alerts are read at scrape time, and the route is guarded by the
master key (or open to a direct loopback peer when configured so)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import FAKE_KEYS, Fakes, GatewayFactory, RunningGateway, standard_config
from thrifty.fake import RunningFake, start_fake

from .promtext import samples, total

MASTER = "sk-master-metrics-0123456789"
AUTH = {"Authorization": f"Bearer {MASTER}"}


@pytest.fixture
async def broken() -> AsyncIterator[RunningFake]:
    fake = await start_fake("openai", api_key=FAKE_KEYS["openai"], error_rate=1.0,
                            faults=["500"])
    yield fake
    await fake.close()


def config(fakes: Fakes, broken: RunningFake, tmp_path: Path, **telemetry: Any) -> dict:
    cfg = standard_config(fakes, tmp_path / "ledger.db")
    cfg["providers"]["broken"] = {"vendor": "openai", "base_url": f"{broken.base_url}/v1",
                                  "api_key": FAKE_KEYS["openai"]}
    cfg["models"]["broken-mini"] = {"provider": "broken", "model": "gpt-4o-mini",
                                    "price": {"input": "0.15", "output": "0.60"}}
    cfg["aliases"]["sturdy"] = ["broken-mini", "an-haiku"]
    cfg["limits"] = {"rules": [{"resource": "usd", "window": "day", "amount": "10"}]}
    cfg["resilience"] = {"retries": {"max_attempts": 1}}
    cfg["server"] = {"master_key": MASTER}
    cfg["telemetry"] = telemetry
    return cfg


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}


async def send(gw: RunningGateway, bodies: list[dict[str, Any]]) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession(headers=AUTH) as s:
        for body in bodies:
            async with s.post(f"{gw.v1}/chat/completions", json=body) as r:
                await r.read()
                statuses.append(r.status)
    return statuses


async def scrape(gw: RunningGateway, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(f"{gw.base_url}/metrics",
                                                   headers=headers or AUTH) as r:
        return r.status, await r.text()


async def test_metrics_agree_with_the_ledger(fakes: Fakes, broken: RunningFake,
                                             gateway_factory: GatewayFactory,
                                             tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, broken, tmp_path))
    stream = {"stream": True, "stream_options": {"include_usage": True}}
    statuses = await send(gw, [chat("oa-mini"), chat("ge-flash"), chat("an-haiku", **stream),
                               *[chat("sturdy") for _ in range(5)], chat("no-such-model")])
    assert statuses == [200] * 8 + [404]
    rows = await gw.ledger_rows()
    status, text = await scrape(gw)
    assert status == 200
    s = samples(text)
    assert total(s, "thrifty_requests_total") == len(rows) == 9
    assert total(s, "thrifty_requests_total", status="404") == 1
    assert total(s, "thrifty_tokens_total", type="input") == sum(r["input_tokens"] for r in rows)
    assert total(s, "thrifty_tokens_total", type="output") == sum(
        r["output_tokens"] for r in rows)
    assert total(s, "thrifty_cost_usd_total") == pytest.approx(
        sum(r["cost_nano_usd"] for r in rows) / 1e9)
    assert total(s, "thrifty_time_to_first_token_seconds_count") == 1
    assert total(s, "thrifty_gateway_overhead_seconds_count") == 8
    assert total(s, "thrifty_request_errors_total", code="model_not_found") == 1
    # every sturdy request failed on the broken deployment first (until its breaker
    # opened after 5 failures: the 5th request's failure opened it)
    assert total(s, "thrifty_fallbacks_total", route="alias:sturdy") == 5
    assert total(s, "thrifty_upstream_errors_total", provider="broken",
                 **{"class": "server"}) == 5
    assert total(s, "thrifty_breaker_state", provider="broken", state="open") == 1
    assert total(s, "thrifty_breaker_state", provider="openai", state="closed") >= 1
    assert total(s, "thrifty_budget_limit", limit="global:usd:day") == 10


async def test_budget_headroom_and_drift_are_read_at_scrape_time(
        fakes: Fakes, broken: RunningFake, gateway_factory: GatewayFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    gw = await gateway_factory(config(fakes, broken, tmp_path))
    await send(gw, [chat("oa-mini"), chat("an-haiku")])
    spent = sum(r["cost_nano_usd"] for r in await gw.ledger_rows()) / 1e9
    remaining = 0.0
    for _ in range(50):  # reservations settle in a task after the answer: wait for it
        remaining = total(samples((await scrape(gw))[1]), "thrifty_budget_remaining",
                          limit="global:usd:day")
        if remaining == pytest.approx(10 - spent):
            break
        await asyncio.sleep(0.02)
    assert remaining == pytest.approx(10 - spent)

    class Alert:
        def to_json(self) -> dict[str, Any]:
            return {"provider": "openai", "model": "gpt-4o-mini", "signal": "output_tokens"}

    class Drift:
        def alerts(self) -> list[Alert]:
            return [Alert()]

    monkeypatch.setattr(gw.gateway, "drift", Drift(), raising=False)
    s = samples((await scrape(gw))[1])
    assert total(s, "thrifty_drift_alert", provider="openai", signal="output_tokens") == 1


async def test_metrics_need_the_master_key(fakes: Fakes, broken: RunningFake,
                                           gateway_factory: GatewayFactory,
                                           tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, broken, tmp_path))
    status, body = await scrape(gw, {"x-nothing": "1"})
    assert status == 401 and "thrifty_" not in body
    status, _ = await scrape(gw, {"Authorization": "Bearer sk-wrong-0123456789"})
    assert status == 401


async def test_public_on_loopback_lets_a_local_scraper_in_but_not_a_proxied_one(
        fakes: Fakes, broken: RunningFake, gateway_factory: GatewayFactory,
        tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, broken, tmp_path,
                                      metrics={"public_on_loopback": True}))
    status, body = await scrape(gw, {"x-nothing": "1"})
    assert status == 200 and "thrifty_cache_hits_total" in body
    status, _ = await scrape(gw, {"X-Forwarded-For": "203.0.113.9"})
    assert status == 401


async def test_metrics_can_be_turned_off(fakes: Fakes, broken: RunningFake,
                                         gateway_factory: GatewayFactory,
                                         tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, broken, tmp_path, metrics={"enabled": False}))
    assert (await scrape(gw))[0] == 404
    assert not gw.gateway.observers or all(
        type(o).__name__ != "Metrics" for o in gw.gateway.observers)
