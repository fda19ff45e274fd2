"""One conformance suite for every provider adapter, run end to end: the official openai
SDK -> the gateway over real HTTP -> each adapter -> a fake provider speaking that vendor's
real wire format. Text, tools, images, JSON, streaming, usage and exact cost, and every
error class, for every wire (plus an OpenAI-compatible vendor that renames parameters)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import (
    FAKE_KEYS,
    Fakes,
    GatewayFactory,
    RunningGateway,
    openai_client,
    standard_config,
)

from thrifty.core.usage import usage_from_openai
from thrifty.pricing.cost import compute_cost, to_nano_usd
from thrifty.pricing.price import Price

PRICES = {
    "oa-mini": Price.of("0.15", "0.60", "0.075"),
    "an-haiku": Price.of("0.80", "4.00", "0.08", "1.00"),
    "ge-flash": Price.of("0.10", "0.40", "0.025"),
    "ds-flash": Price.of("0.14", "0.28", "0.0028"),
}
MODELS = list(PRICES)
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "verdict", "strict": True, "schema": {
    "type": "object", "additionalProperties": False, "required": ["label", "score"],
    "properties": {"label": {"type": "string", "enum": ["good", "bad"]},
                   "score": {"type": "integer"}}}}}
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def config(fakes: Fakes, db: Path) -> dict[str, Any]:
    cfg = standard_config(fakes, db)
    # OpenAI-compatible vendor entries with parameter renames, served by the OpenAI fake.
    for vendor in ("deepseek", "mistral"):
        cfg["providers"][vendor] = {"base_url": f"{fakes.openai.base_url}/v1",
                                    "api_key": FAKE_KEYS["openai"]}
    cfg["models"]["ds-flash"] = {"provider": "deepseek", "model": "deepseek-v4-flash",
                                 "price": {"input": "0.14", "output": "0.28",
                                           "cached_input": "0.0028"}}
    cfg["models"]["mi-small"] = {"provider": "mistral", "model": "mistral-small-latest",
                                 "price": {"input": "0.20", "output": "0.60"}}
    return cfg


@pytest.fixture
async def gwc(fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> RunningGateway:
    return await gateway_factory(config(fakes, tmp_path / "ledger.db"))


client = openai_client


def expected_cost(model: str, usage: Any) -> Decimal:
    u = usage_from_openai(usage if isinstance(usage, dict) else usage.model_dump())
    assert u is not None
    return compute_cost(u, PRICES[model])


@pytest.mark.parametrize("model", MODELS)
async def test_text_usage_and_exact_cost(gwc: RunningGateway, model: str) -> None:
    c = client(gwc)
    raw = await c.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "echo: the answer is 42"}],
        temperature=0.2, top_p=0.9, max_completion_tokens=50, seed=3, stop=["zzz"],
        user="u-1")
    r = raw.parse()
    assert r.choices[0].message.content == "the answer is 42"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    cost = expected_cost(model, r.usage)
    assert cost > 0
    assert Decimal(raw.headers["x-thrifty-cost-usd"]) == cost.quantize(Decimal("1e-10"))
    assert Decimal(r.model_extra["thrifty"]["cost_usd"]) == Decimal(
        raw.headers["x-thrifty-cost-usd"])
    assert raw.headers["x-thrifty-request-id"].startswith("thr-")
    assert raw.headers["x-thrifty-provider"] in {"openai", "anthropic", "gemini", "deepseek"}
    rows = await gwc.ledger_rows()
    assert len(rows) == 1
    row = rows[0]
    assert row["request_id"] == raw.headers["x-thrifty-request-id"]
    assert row["status"] == 200 and row["requested_model"] == model
    assert row["cost_nano_usd"] == to_nano_usd(cost)
    assert row["input_tokens"] == r.usage.prompt_tokens
    assert row["output_tokens"] == r.usage.completion_tokens


@pytest.mark.parametrize("model", MODELS)
async def test_stream_with_usage_matches_non_stream(gwc: RunningGateway, model: str) -> None:
    c = client(gwc)
    msgs: Any = [{"role": "user", "content": "Tell me about cheap inference."}]
    whole = await c.chat.completions.create(model=model, messages=msgs)
    stream = await c.chat.completions.create(model=model, messages=msgs, stream=True,
                                             stream_options={"include_usage": True})
    text, usage_chunks, finish = "", [], None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage_chunks.append(chunk)
    assert text == whole.choices[0].message.content and text
    assert finish == "stop"
    assert len(usage_chunks) == 1
    last = usage_chunks[0]
    cost = expected_cost(model, last.usage)
    assert Decimal(last.model_extra["thrifty"]["cost_usd"]) == cost.quantize(Decimal("1e-10"))
    rows = await gwc.ledger_rows()
    assert [r["stream"] for r in rows] == [0, 1]
    assert rows[1]["cost_nano_usd"] == to_nano_usd(cost) and rows[1]["usage_known"] == 1
    assert rows[1]["ttft_ms"] is not None


@pytest.mark.parametrize("model", MODELS)
async def test_stream_without_usage_is_still_priced(gwc: RunningGateway, model: str) -> None:
    stream = await client(gwc).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello"}], stream=True)
    chunks = [ch async for ch in stream]
    assert all(ch.usage is None for ch in chunks)
    rows = await gwc.ledger_rows()
    assert rows[0]["usage_known"] == 1 and rows[0]["cost_nano_usd"] > 0
    assert rows[0]["output_tokens"] > 0


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
async def test_parallel_tool_calls_and_tool_result_round_trip(
    gwc: RunningGateway, model: str, stream: bool
) -> None:
    c = client(gwc)
    msgs: list[Any] = [{"role": "user", "content": "Weather and time in Lisbon, in parallel"}]
    if stream:
        calls: dict[int, dict[str, str]] = {}
        s = await c.chat.completions.create(model=model, messages=msgs, tools=[WEATHER, TIME],
                                            stream=True)
        finish = None
        async for chunk in s:
            for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                slot["id"] += tc.id or ""
                slot["name"] += (tc.function.name or "") if tc.function else ""
                slot["args"] += (tc.function.arguments or "") if tc.function else ""
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        assert finish == "tool_calls"
        got = [(v["id"], v["name"], v["args"]) for _, v in sorted(calls.items())]
    else:
        r = await c.chat.completions.create(model=model, messages=msgs, tools=[WEATHER, TIME])
        assert r.choices[0].finish_reason == "tool_calls"
        got = [(t.id, t.function.name, t.function.arguments)
               for t in r.choices[0].message.tool_calls or []]
    assert {name for _, name, _ in got} == {"get_weather", "get_time"}
    for _, name, args in got:
        parsed = json.loads(args)
        assert "city" in parsed
        if name == "get_weather":
            assert parsed["unit"] in ("c", "f")
    msgs.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": cid, "type": "function", "function": {"name": n, "arguments": a}}
        for cid, n, a in got]})
    for cid, name, _ in got:
        msgs.append({"role": "tool", "tool_call_id": cid, "content": f'{{"{name}": "ok-{name}"}}'})
    final = await c.chat.completions.create(model=model, messages=msgs, tools=[WEATHER, TIME])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content


@pytest.mark.parametrize("model", MODELS)
async def test_forced_tool_choice(gwc: RunningGateway, model: str) -> None:
    r = await client(gwc).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "anything"}], tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}})
    calls = r.choices[0].message.tool_calls or []
    assert [t.function.name for t in calls] == ["get_time"]


@pytest.mark.parametrize("model", MODELS)
async def test_json_schema_and_json_object(gwc: RunningGateway, model: str) -> None:
    c = client(gwc)
    r = await c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Judge: 'cheap and good'"}],
        response_format=SCHEMA)  # type: ignore[arg-type]
    data = json.loads(r.choices[0].message.content or "")
    if model == "ds-flash":  # no structured outputs: JSON mode plus the schema as a hint
        assert isinstance(data, dict)
    else:
        assert data["label"] in ("good", "bad") and isinstance(data["score"], int)
    r2 = await c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Reply in JSON"}],
        response_format={"type": "json_object"})
    assert isinstance(json.loads(r2.choices[0].message.content or ""), dict)


@pytest.mark.parametrize("model", MODELS)
async def test_image_parts_are_accepted_and_billed(gwc: RunningGateway, model: str) -> None:
    c = client(gwc)
    text_only = await c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"}]}])
    with_image = await c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": PIXEL}}]}])
    assert with_image.choices[0].message.content
    assert text_only.usage and with_image.usage
    assert with_image.usage.prompt_tokens > text_only.usage.prompt_tokens


async def test_length_finish_reason(gwc: RunningGateway) -> None:
    for model in MODELS:
        r = await client(gwc).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Write a long essay."}],
            max_tokens=3)
        assert r.choices[0].finish_reason == "length", model
        assert r.usage is not None and r.usage.completion_tokens <= 3


async def test_prompt_cache_reads_are_priced_lower(gwc: RunningGateway) -> None:
    c = client(gwc)
    long_text = " ".join(f"clause {i} says refunds take {i % 7} days." for i in range(900))
    costs, cached = [], []
    for _ in range(2):
        raw = await c.chat.completions.with_raw_response.create(
            model="oa-mini", messages=[{"role": "system", "content": long_text},
                                       {"role": "user", "content": "echo: ok"}])
        r = raw.parse()
        assert r.usage is not None and r.usage.prompt_tokens_details is not None
        cached.append(r.usage.prompt_tokens_details.cached_tokens or 0)
        costs.append(Decimal(raw.headers["x-thrifty-cost-usd"]))
    assert cached[0] == 0 and cached[1] > 0
    assert costs[1] < costs[0]
    rows = await gwc.ledger_rows()
    assert rows[1]["cached_input_tokens"] == cached[1]


async def test_anthropic_cache_control_writes_then_reads(gwc: RunningGateway) -> None:
    c = client(gwc)
    long_text = " ".join(f"section {i}: shipping takes {i % 5} days." for i in range(700))
    msgs: Any = [{"role": "system", "content": [
        {"type": "text", "text": long_text, "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "echo: fine"}]
    first = await c.chat.completions.create(model="an-haiku", messages=msgs)
    second = await c.chat.completions.create(model="an-haiku", messages=msgs)
    assert first.usage and second.usage
    rows = await gwc.ledger_rows()
    assert rows[0]["cache_write_tokens"] > 0 and rows[0]["cached_input_tokens"] == 0
    assert rows[1]["cached_input_tokens"] > 0
    # the same prompt costs less once cached; the first paid the 1.25x write premium
    assert rows[1]["cost_nano_usd"] < rows[0]["cost_nano_usd"]
    assert first.usage.prompt_tokens == second.usage.prompt_tokens


async def test_reasoning_tokens_are_recorded_and_priced_as_output(
    gwc: RunningGateway,
) -> None:
    r = await client(gwc).chat.completions.create(
        model="oa-o3", messages=[{"role": "user", "content": "Think about 17 * 23."}])
    assert r.usage is not None and r.usage.completion_tokens_details is not None
    reasoning = r.usage.completion_tokens_details.reasoning_tokens or 0
    assert reasoning > 0
    rows = await gwc.ledger_rows()
    assert rows[0]["reasoning_tokens"] == reasoning
    price = Price.of("1.10", "4.40", "0.55")
    u = usage_from_openai(r.usage.model_dump())
    assert u is not None and rows[0]["cost_nano_usd"] == to_nano_usd(compute_cost(u, price))


async def test_models_endpoint_lists_models_and_aliases(gwc: RunningGateway) -> None:
    ids = [m.id async for m in client(gwc).models.list()]
    assert {"oa-mini", "an-haiku", "ge-flash", "cheap"} <= set(ids)
    assert "openai/gpt-4o-mini" in ids  # catalog models of configured vendors


async def test_vendor_that_streams_no_usage_is_estimated_and_flagged(
    gwc: RunningGateway,
) -> None:
    """Mistral takes no stream_options (thrifty drops it); when no usage arrives the row is
    estimated from characters and flagged, never $0."""
    stream = await client(gwc).chat.completions.create(
        model="mi-small", messages=[{"role": "user", "content": "hello there"}], stream=True,
        stream_options={"include_usage": True})
    chunks = [ch async for ch in stream]
    last = chunks[-1]
    assert last.usage is not None and last.usage.completion_tokens > 0
    assert last.model_extra["thrifty"]["usage_estimated"] is True
    rows = await gwc.ledger_rows()
    assert rows[0]["usage_known"] == 0 and rows[0]["cost_nano_usd"] > 0


async def test_vendor_parameter_mapping_reaches_the_wire(gwc: RunningGateway) -> None:
    """seed -> random_seed and max_completion_tokens -> max_tokens for Mistral; the fake
    honours max_tokens, so truncation proves the rename happened."""
    r = await client(gwc).chat.completions.create(
        model="mi-small", messages=[{"role": "user", "content": "Write a long essay."}],
        max_completion_tokens=2, seed=5)
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens <= 2
