"""Drift detection end to end: clients -> the gateway over real HTTP -> fake providers whose
behaviour is shifted mid-run. Before the shift no alert may fire; after it the alert must
fire within a bounded number of requests; with demotion on the next requests route away
from the drifting model until the alert is cleared through the admin API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.conftest import Fakes, GatewayFactory, RunningGateway, standard_config

MASTER = "mk-operator-0123456789"
STEADY = 140
"""Requests before the shift: past the 100-sample warm-up, with room to alarm falsely."""


def config(fakes: Fakes, tmp: Path, **drift: Any) -> dict[str, Any]:
    cfg = standard_config(fakes, tmp / "ledger.db")
    cfg["server"] = {"master_key": MASTER}
    # every request judged: these bursts run faster than the default sampling rate
    cfg["drift"] = {"max_samples_per_s": None, **drift}
    return cfg


class Client:
    def __init__(self, gw: RunningGateway, session: aiohttp.ClientSession) -> None:
        self.gw, self.s = gw, session
        self.n = 0

    async def chat(self, model: str, **extra: Any) -> tuple[int, dict[str, str], bytes]:
        self.n += 1  # a new prompt each time: the fake's answer length follows its hash
        body = {"model": model, "messages": [
            {"role": "user", "content": f"Tell me about cheap inference, take {self.n}."}],
            **extra}
        async with self.s.post(f"{self.gw.v1}/chat/completions", data=orjson.dumps(body),
                               headers={"authorization": f"Bearer {MASTER}"}) as r:
            return r.status, dict(r.headers), await r.read()

    async def admin(self, method: str, path: str, key: str | None = MASTER
                    ) -> tuple[int, Any]:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        async with self.s.request(method, f"{self.gw.v1}/thrifty/drift{path}",
                                  headers=headers) as r:
            return r.status, await r.json()

    async def alerts(self, **query: str) -> list[dict[str, Any]]:
        status, body = await self.admin("GET", "?" + "&".join(f"{k}={v}" for k, v in
                                                               query.items()))
        assert status == 200, body
        data: list[dict[str, Any]] = body["data"]
        return data

    async def until_alert(self, model: str, limit: int, **extra: Any) -> int:
        """Requests sent until the first alert appears (at most ``limit``)."""
        for i in range(1, limit + 1):
            status, _, _ = await self.chat(model, **extra)
            assert status == 200
            if await self.alerts():
                return i
        raise AssertionError(f"no drift alert within {limit} requests of the shift")


async def steady(c: Client, model: str, n: int = STEADY, **extra: Any) -> None:
    for _ in range(n):
        status, _, body = await c.chat(model, **extra)
        assert status == 200, body
    assert await c.alerts() == [], "an alert fired before the shift"


async def test_shorter_answers_alert_demote_and_clear(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, tmp_path, demote=True))
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await steady(c, "cheap")
        fakes.openai.set_behaviour(output_words=4)  # answers of 20-80 words become 4
        after = await c.until_alert("cheap", 10)
        [alert] = await c.alerts()
        assert alert["signal"] == "output_tokens" and alert["direction"] == "down"
        assert (alert["provider"], alert["model"]) == ("openai", "gpt-4o-mini")
        assert alert["demoted"] is True and alert["cleared_at"] is None
        assert alert["current"] < alert["baseline"] / 4
        assert 1 <= after <= 10

        status, headers, _ = await c.chat("cheap")  # demoted: the fallback answers
        assert status == 200 and headers["x-thrifty-provider"] == "anthropic"
        rows = await gw.ledger_rows()
        plan = orjson.loads(rows[-1]["trace"])["plan"]
        assert "demoted: openai/gpt-4o-mini" in plan["reason"]
        assert plan["tiers"] == [["an-haiku"]]
        status, headers, _ = await c.chat("oa-mini")  # nothing else can serve it: served
        assert status == 200 and headers["x-thrifty-provider"] == "openai"

        status, cleared = await c.admin("POST", f"/{alert['id']}/clear")
        assert status == 200 and cleared["cleared_at"] is not None
        assert await c.alerts() == []
        assert [a["id"] for a in await c.alerts(include_cleared="true")] == [alert["id"]]
        status, headers, _ = await c.chat("cheap")
        assert status == 200 and headers["x-thrifty-provider"] == "openai"


async def test_refusals_alert_without_demotion(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, tmp_path))  # demote is off by default
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await steady(c, "an-haiku")
        fakes.anthropic.set_behaviour(refuse_rate=0.5)
        after = await c.until_alert("an-haiku", 50)
        await c.chat("an-haiku")  # a refusal is short (and quick): output_tokens and
        alerts = {a["signal"]: a for a in await c.alerts()}  # latency may alert next to it
        assert set(alerts) <= {"refusal_rate", "output_tokens", "latency_ms"}
        alert = alerts["refusal_rate"]
        assert alert["direction"] == "up"
        assert (alert["provider"], alert["model"]) == ("anthropic", "claude-haiku-4-5")
        assert alert["demoted"] is False and alert["baseline"] == 0
        assert 1 <= after <= 50
        status, headers, _ = await c.chat("cheap")  # not demoted: the primary still serves
        assert status == 200 and headers["x-thrifty-provider"] == "openai"


async def test_slower_provider_alerts_on_latency(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, tmp_path))
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        fakes.gemini.set_behaviour(latency_ms=20)
        await steady(c, "ge-flash")
        fakes.gemini.set_behaviour(latency_ms=100)
        after = await c.until_alert("ge-flash", 10)
        [alert] = await c.alerts()
        assert alert["signal"] == "latency_ms" and alert["direction"] == "up"
        assert alert["provider"] == "gemini" and alert["current"] > 2 * alert["baseline"]
        assert 1 <= after <= 10


async def test_broken_json_in_streams_alerts_on_validity(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, tmp_path))
    json_mode = {"response_format": {"type": "json_object"}, "stream": True}
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        await steady(c, "oa-mini", **json_mode)
        fakes.openai.set_behaviour(bad_json_rate=0.6)
        after = await c.until_alert("oa-mini", 50, **json_mode)
        [alert] = await c.alerts()
        assert alert["signal"] == "json_validity" and alert["direction"] == "down"
        assert alert["baseline"] == 1 and alert["current"] < 0.8
        assert 1 <= after <= 50


async def test_admin_api_needs_the_master_key(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, tmp_path))
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        status, body = await c.admin("GET", "", key=None)
        assert status == 401 and body["error"]["code"] == "missing_api_key"
        status, body = await c.admin("GET", "", key="sk-wrong")
        assert status == 401
        status, body = await c.admin("POST", "/drift-nope/clear")
        assert status == 404 and body["error"]["code"] == "drift_alert_not_found"
        status, body = await c.admin("GET", "?include_cleared=maybe")
        assert status == 400 and body["error"]["param"] == "include_cleared"


async def test_drift_off(fakes: Fakes, gateway_factory: GatewayFactory,
                         tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, tmp_path, enabled=False))
    assert gw.gateway.drift is None
    async with aiohttp.ClientSession() as s:
        c = Client(gw, s)
        status, _, _ = await c.chat("oa-mini")
        assert status == 200
        status, body = await c.admin("GET", "")
        assert status == 404 and body["error"]["code"] == "drift_disabled"
