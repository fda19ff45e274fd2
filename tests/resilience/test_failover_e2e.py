"""Failover end to end: deployments of one model, breakers, fallbacks by reason, per-request
fallbacks, stream continuation after the first token, and the all-down 503."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import FAKE_KEYS, Fakes, GatewayFactory, RunningGateway

PRICE = {"input": "1", "output": "2"}


def config(f: Fakes, db: Path, *, flaky_fault: str = "503", **extra: Any) -> dict[str, Any]:
    oa = f"{f.openai.base_url}/v1"
    cfg: dict[str, Any] = {
        "providers": {
            "oa-flaky": {"vendor": "openai", "base_url": oa, "api_key": FAKE_KEYS["openai"],
                         "headers": {"x-fake-fault": flaky_fault}},
            "oa-ok": {"vendor": "openai", "base_url": oa, "api_key": FAKE_KEYS["openai"]},
            "anthropic": {"base_url": f.anthropic.base_url, "api_key": FAKE_KEYS["anthropic"]},
        },
        "models": {
            "mini": {"deployments": [{"provider": "oa-flaky", "model": "gpt-4o-mini",
                                      "weight": 1000}, {"provider": "oa-ok",
                                                        "model": "gpt-4o-mini"}],
                     "price": PRICE},
            "only-flaky": {"provider": "oa-flaky", "model": "gpt-4o-mini", "price": PRICE},
            "haiku": {"provider": "anthropic", "model": "claude-haiku-4-5", "price": PRICE},
        },
        "server": {"request_timeout_s": 10, "first_token_timeout_s": 2},
        "resilience": {"retries": {"max_attempts": 2, "base_s": 0.01, "max_backoff_s": 0.05}},
        "ledger": {"path": str(db)},
    }
    cfg.update(extra)
    return cfg


async def post(gw: RunningGateway, body: dict[str, Any],
               headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    async with aiohttp.ClientSession() as s, s.post(
            f"{gw.v1}/chat/completions", data=orjson.dumps(body), headers=headers or {}) as r:
        return r.status, r.headers, await r.read()


MSG = [{"role": "user", "content": "echo: fine"}]


async def test_failed_deployment_fails_over_then_its_breaker_opens(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, tmp_path / "l.db"))
    status, headers, body = await post(gw, {"model": "mini", "messages": MSG})
    assert status == 200 and orjson.loads(body)["choices"][0]["message"]["content"] == "fine"
    assert headers["x-thrifty-attempts"] == "oa-flaky/gpt-4o-mini=503,oa-ok/gpt-4o-mini=200"
    for _ in range(6):  # consecutive failures open the flaky deployment's breaker
        await post(gw, {"model": "mini", "messages": MSG})
    status, headers, _ = await post(gw, {"model": "mini", "messages": MSG})
    assert status == 200 and headers["x-thrifty-attempts"] == "oa-ok/gpt-4o-mini=200"
    report = await gw.gateway.resilience.health.snapshot()
    assert str(report["oa-flaky/gpt-4o-mini"].state) == "open"
    async with aiohttp.ClientSession() as s, s.get(f"{gw.v1}/thrifty/health") as r:
        data = (await r.json())["data"]
    flaky = next(d for d in data if d["deployment"] == "oa-flaky/gpt-4o-mini")
    assert flaky["state"] == "open" and flaky["last_error"]
    rows = await gw.ledger_rows()
    assert rows[0]["calls"] == 2 and rows[-1]["calls"] == 1


async def test_fallback_by_reason(fakes: Fakes, gateway_factory: GatewayFactory,
                                  tmp_path: Path) -> None:
    cfg = config(fakes, tmp_path / "l.db", flaky_fault="429",
                 fallbacks={"only-flaky": [{"on": ["server_error"], "to": ["mini"]},
                                           {"on": ["rate_limit"], "to": ["haiku"]}]})
    gw = await gateway_factory(cfg)
    status, headers, _ = await post(gw, {"model": "only-flaky", "messages": MSG})
    assert status == 200 and headers["x-thrifty-provider"] == "anthropic"
    rows = await gw.ledger_rows()
    trace = orjson.loads(rows[0]["trace"])
    assert trace["escalation"] == "fallback after rate_limit"


async def test_no_matching_fallback_surfaces_the_error_and_request_fallbacks_work(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    cfg = config(fakes, tmp_path / "l.db", flaky_fault="429",
                 fallbacks={"only-flaky": [{"on": ["server_error"], "to": ["haiku"]}]})
    gw = await gateway_factory(cfg)
    status, headers, _ = await post(gw, {"model": "only-flaky", "messages": MSG})
    assert status in (429, 503) and "retry-after" in headers
    status, headers, _ = await post(gw, {"model": "only-flaky", "messages": MSG},
                                    {"x-thrifty-fallbacks": "haiku"})
    assert status == 200 and headers["x-thrifty-provider"] == "anthropic"
    status, headers, _ = await post(gw, {"model": "only-flaky", "messages": MSG,
                                         "thrifty": {"fallbacks": ["mini"]}})
    assert status == 200 and headers["x-thrifty-provider"] == "oa-ok"


async def test_every_deployment_down_is_a_quick_503_with_retry_after(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, tmp_path / "l.db"))
    t0 = time.monotonic()
    for stream in (False, True, False, True):
        status, headers, body = await post(gw, {"model": "only-flaky", "messages": MSG,
                                                "stream": stream})
        assert status == 503, body
        assert float(headers["retry-after"]) >= 1
        assert orjson.loads(body)["error"]["type"] == "upstream_error"
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("fault", ["cut", "malformed"])
async def test_stream_continues_on_another_deployment_after_a_mid_stream_failure(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path, fault: str) -> None:
    cfg = config(fakes, tmp_path / "l.db", flaky_fault=fault)
    cfg["resilience"]["stream_failover"] = "continue"
    gw = await gateway_factory(cfg)
    status, _, body = await post(gw, {
        "model": "mini", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Tell me a long story about gateways."}]})
    assert status == 200
    events = [e[6:] for e in body.decode().split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert not any("error" in c for c in chunks)
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")]
    assert finish[-1] == "stop"
    assert "thrifty" in chunks[-1] and chunks[-1]["usage"]
    roles = [c for c in chunks if c.get("choices") and "role" in c["choices"][0]["delta"]]
    assert len(roles) <= 1  # the continuation does not repeat the role
    rows = await gw.ledger_rows()
    trace = orjson.loads(rows[0]["trace"])
    calls = trace["calls"]
    assert calls[0]["provider"] == "oa-flaky" and calls[0]["cost_usd"] == "0"
    assert calls[0]["status"] >= 500
    if calls[0].get("verdict", "").startswith("stream cut"):  # failed after the first token
        assert "continued on oa-ok" in trace["escalation"]
    assert calls[-1]["provider"] == "oa-ok" and calls[-1]["verdict"].startswith("accepted")
    assert rows[0]["status"] == 200


async def test_stream_without_continuation_ends_with_an_error_event(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory(config(fakes, tmp_path / "l.db", flaky_fault="cut"))
    status, _, body = await post(gw, {
        "model": "only-flaky", "stream": True,
        "messages": [{"role": "user", "content": "Tell me a long story about gateways."}]})
    text = body.decode()
    if status == 200:  # cut after the first token: an OpenAI-style error event, then DONE
        assert '"error"' in text and text.rstrip().endswith("[DONE]")
    else:  # cut before it: a plain error status
        assert status >= 500


async def test_hedging_races_a_second_deployment_and_bills_both(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    cfg = config(fakes, tmp_path / "l.db", flaky_fault="none")
    cfg["providers"]["oa-flaky"]["headers"]["x-fake-latency-ms"] = "400"  # slow, not broken
    cfg["resilience"]["hedge_after_ms"] = 50
    gw = await gateway_factory(cfg)
    t0 = time.monotonic()
    status, headers, _ = await post(gw, {"model": "mini", "messages": MSG})
    elapsed = time.monotonic() - t0
    assert status == 200 and headers["x-thrifty-provider"] == "oa-ok"
    assert elapsed < 0.4  # the hedge answered before the slow deployment would have
    rows = await gw.ledger_rows()
    trace = orjson.loads(rows[0]["trace"])
    verdicts = {c["provider"]: c.get("verdict") for c in trace["calls"]}
    assert verdicts == {"oa-flaky": "hedge: lost the race", "oa-ok": "accepted"}
    lost = next(c for c in trace["calls"] if c["provider"] == "oa-flaky")
    assert lost["status"] == 499 and lost["usage_estimated"] is True
    assert float(lost["cost_usd"]) > 0  # its prompt was sent: billed, estimated, flagged
    assert rows[0]["calls"] == 2


async def test_health_cli_reads_a_running_gateway(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from thrifty.cli.main import main

    gw = await gateway_factory(config(fakes, tmp_path / "l.db"))
    await post(gw, {"model": "mini", "messages": MSG})
    code = await asyncio.to_thread(main, ["health", "--url", gw.base_url, "--json"])
    assert code == 0
    data = orjson.loads(capsys.readouterr().out)["data"]
    by_key = {d["deployment"]: d for d in data}
    assert by_key["oa-flaky/gpt-4o-mini"]["last_error"] == "server"
    assert by_key["oa-ok/gpt-4o-mini"]["state"] == "closed"
    assert by_key["oa-ok/gpt-4o-mini"]["latency_ms"] is not None
    code = await asyncio.to_thread(main, ["health", "--url", gw.base_url])
    assert code == 0 and "oa-flaky/gpt-4o-mini" in capsys.readouterr().out
    code = await asyncio.to_thread(main, ["health", "--url", "http://127.0.0.1:9"])
    assert code == 1
