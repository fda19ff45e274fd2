"""Every error class, for every wire, end to end through the gateway: the client always
gets the OpenAI error shape with the right status, the provider is named, its key never
appears, and every failed request still has its ledger row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI
from tests.conftest import FAKE_KEYS, Fakes, GatewayFactory, RunningGateway, standard_config

WIRES = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
# fault -> (status, code) the client must see
FAULTS = {
    "429": (429, "rate_limit_exceeded"),
    "500": (503, "upstream_unavailable"),
    "503": (503, "upstream_unavailable"),
    "529": (503, "upstream_unavailable"),
    "reset": (503, "upstream_connection_failed"),
    "malformed": (502, "upstream_bad_response"),
    "timeout": (504, "upstream_timeout"),
}


def _base(fakes: Fakes, wire: str) -> str:
    fake = getattr(fakes, wire)
    return f"{fake.base_url}/v1" if wire == "openai" else fake.base_url


def faulty_config(fakes: Fakes, db: Path, wire: str, fault: str | None,
                  key: str | None = None) -> dict[str, Any]:
    cfg = standard_config(fakes, db)
    headers = {"x-fake-fault": fault} if fault else {}
    cfg["providers"]["broken"] = {"vendor": wire, "base_url": _base(fakes, wire),
                                  "api_key": key or FAKE_KEYS[wire], "headers": headers}
    cfg["models"]["broken-model"] = {"provider": "broken", "model": WIRES[wire],
                                     "price": {"input": "1", "output": "2"}}
    cfg["aliases"]["with-fallback"] = ["broken-model", "oa-mini"]
    return cfg


async def raw_post(gw: RunningGateway, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s, s.post(
        f"{gw.v1}/chat/completions", data=orjson.dumps(body), headers=headers or {}
    ) as r:
        data = await r.read()
        return r.status, r.headers, orjson.loads(data)


MSG = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("wire", list(WIRES))
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_upstream_fault_maps_to_status(
    fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path, wire: str, fault: str
) -> None:
    gw = await gateway_factory(faulty_config(fakes, tmp_path / "l.db", wire, fault))
    status, headers, body = await raw_post(
        gw, {"model": "broken-model", "messages": MSG, "thrifty": {"timeout_s": 1}})
    want_status, want_code = FAULTS[fault]
    assert status == want_status, body
    err = body["error"]
    assert err["code"] == want_code and err["message"]
    assert err["provider"] == "broken" and headers["x-thrifty-provider"] == "broken"
    assert FAKE_KEYS[wire] not in orjson.dumps(body).decode()
    if fault == "429":
        assert float(headers["retry-after"]) >= 1
    rows = await gw.ledger_rows()
    assert len(rows) == 1
    assert rows[0]["status"] == want_status and rows[0]["error_type"] == want_code
    assert rows[0]["provider"] == "broken" and rows[0]["cost_nano_usd"] == 0


@pytest.mark.parametrize("wire", list(WIRES))
async def test_upstream_auth_failure_is_502_naming_provider_not_key(
    fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path, wire: str
) -> None:
    wrong = f"wrong-key-{wire}-abcdef123456"
    gw = await gateway_factory(faulty_config(fakes, tmp_path / "l.db", wire, None, key=wrong))
    client = AsyncOpenAI(base_url=gw.v1, api_key="x", max_retries=0)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="broken-model", messages=MSG)
    finally:
        await client.close()
    assert info.value.status_code == 502
    text = info.value.response.text
    assert "broken" in info.value.message and wrong not in text
    assert info.value.code == "upstream_authentication_failed"


@pytest.mark.parametrize("wire", list(WIRES))
@pytest.mark.parametrize("fault", ["cut", "malformed"])
async def test_stream_failure_after_first_token_ends_with_error_event(
    fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path, wire: str, fault: str
) -> None:
    gw = await gateway_factory(faulty_config(fakes, tmp_path / "l.db", wire, fault))
    client = AsyncOpenAI(base_url=gw.v1, api_key="x", max_retries=0)
    got = ""
    try:
        stream = await client.chat.completions.create(
            model="broken-model", stream=True,
            messages=[{"role": "user", "content": "Write a long story please."}])
        with pytest.raises(openai.APIError) as info:
            async for chunk in stream:
                if chunk.choices:
                    got += chunk.choices[0].delta.content or ""
    except openai.APIStatusError as exc:  # a fault before the first token: a plain status
        assert exc.status_code == 502
        got = "(failed before first token)"
        info = None
    finally:
        await client.close()
    assert got
    if info is not None:
        assert "broken" in str(info.value.message)
    rows = await gw.ledger_rows()
    assert len(rows) == 1 and rows[0]["status"] == 502
    assert rows[0]["error_type"] == "upstream_bad_response"


@pytest.mark.parametrize("wire", list(WIRES))
@pytest.mark.parametrize("stream", [False, True])
async def test_alias_falls_back_invisibly_before_first_token(
    fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path, wire: str, stream: bool
) -> None:
    gw = await gateway_factory(faulty_config(fakes, tmp_path / "l.db", wire, "503"))
    client = AsyncOpenAI(base_url=gw.v1, api_key="x", max_retries=0)
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model="with-fallback", messages=[{"role": "user", "content": "echo: saved"}],
            stream=stream)
        if stream:
            text = "".join([c.choices[0].delta.content or "" async for c in raw.parse()
                            if c.choices])
        else:
            text = raw.parse().choices[0].message.content or ""
    finally:
        await client.close()
    assert text == "saved"
    assert raw.headers["x-thrifty-provider"] == "openai"
    assert raw.headers["x-thrifty-route"] == "alias:with-fallback;fallback"
    rows = await gw.ledger_rows()
    assert len(rows) == 1 and rows[0]["status"] == 200 and rows[0]["provider"] == "openai"


async def test_unknown_model_is_404_and_recorded(gw: RunningGateway) -> None:
    client = AsyncOpenAI(base_url=gw.v1, api_key="x", max_retries=0)
    try:
        with pytest.raises(openai.NotFoundError) as info:
            await client.chat.completions.create(model="gpt-nope", messages=MSG)
    finally:
        await client.close()
    assert info.value.code == "model_not_found"
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "model"
    rows = await gw.ledger_rows()
    assert rows[0]["status"] == 404 and rows[0]["requested_model"] == "gpt-nope"


async def test_malformed_json_and_wrong_type_name_the_param(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{gw.v1}/chat/completions",
                                                    data=b'{"model": ') as r:
        assert r.status == 400
        body = await r.json()
        assert body["error"]["code"] == "invalid_json"
        assert r.headers["x-thrifty-request-id"]
    status, _, body = await raw_post(gw, {"model": "oa-mini", "messages": MSG,
                                          "max_tokens": "ten"})
    assert status == 400 and body["error"]["param"] == "max_tokens"
    rows = await gw.ledger_rows()
    assert [r["status"] for r in rows] == [400, 400]


async def test_unknown_path_and_health_endpoints(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.base_url}/v1/nothing") as r:
            assert r.status == 404
            assert (await r.json())["error"]["type"] == "invalid_request_error"
        async with s.get(f"{gw.base_url}/healthz") as r:
            assert r.status == 200
        async with s.get(f"{gw.base_url}/readyz") as r:
            assert r.status == 200 and (await r.json())["models"] > 4


async def test_master_key_is_required_when_configured(
    fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    cfg = standard_config(fakes, tmp_path / "l.db")
    cfg["server"] = {"master_key": "mk-correct-horse-battery"}
    gw = await gateway_factory(cfg)
    body = {"model": "oa-mini", "messages": MSG}
    status, _, err = await raw_post(gw, body)
    assert status == 401 and err["error"]["type"] == "authentication_error"
    status, _, err = await raw_post(gw, body, {"authorization": "Bearer mk-wrong"})
    assert status == 401 and "mk-wrong" not in orjson.dumps(err).decode()
    status, _, ok = await raw_post(gw, body, {"authorization": "Bearer mk-correct-horse-battery"})
    assert status == 200 and ok["choices"]
    async with aiohttp.ClientSession() as s, s.get(f"{gw.v1}/models") as r:
        assert r.status == 401


async def test_client_disconnect_mid_stream_cancels_and_records(
    fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    import asyncio

    from thrifty.fake import start_fake

    async with await start_fake("openai", tokens_per_s=40, api_key=FAKE_KEYS["openai"]) as slow:
        cfg = standard_config(fakes, tmp_path / "l.db")
        cfg["providers"]["openai"]["base_url"] = f"{slow.base_url}/v1"
        gw = await gateway_factory(cfg)
        body = {"model": "oa-mini", "stream": True,
                "messages": [{"role": "user", "content": "Write a very long story."}]}
        async with aiohttp.ClientSession() as s:
            resp = await s.post(f"{gw.v1}/chat/completions", data=orjson.dumps(body))
            assert resp.status == 200
            seen = b""
            while seen.count(b'"content":"') < 3:  # a few words in, then hang up
                seen += await resp.content.readany()
            resp.close()
        rows = await gw.ledger_rows_soon()
        assert len(rows) == 1
        assert rows[0]["status"] == 499 and rows[0]["error_type"] == "client_closed"
        assert rows[0]["stream"] == 1 and rows[0]["usage_known"] == 0
        assert rows[0]["output_tokens"] > 0 and rows[0]["cost_nano_usd"] > 0
        # the upstream call was cut, not read to its end
        for _ in range(100):
            if slow.stats.outcomes.get("aborted"):
                break
            await asyncio.sleep(0.02)
        assert slow.stats.outcomes.get("aborted") == 1
        assert not slow.stats.served
