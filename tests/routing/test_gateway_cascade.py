"""Cascade routes end to end: the official openai SDK -> the gateway over real HTTP -> the
cascade executor -> fake providers of three wires. Which tier answers, what the client is
billed (every call, at the configured prices), what streams (only the accepted answer),
and what the ledger keeps (one row per request with the full decision trace)."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openai import APIStatusError
from tests.conftest import (
    FAKE_KEYS,
    Fakes,
    GatewayFactory,
    RunningGateway,
    openai_client,
    standard_config,
)

from thrifty.fake import RunningFake
from thrifty.pricing.cost import compute_cost, format_usd, to_nano_usd
from thrifty.pricing.price import Price

PRICES = {
    "oa-mini": Price.of("0.15", "0.60", "0.075"),
    "oa-down": Price.of("0.15", "0.60", "0.075"),
    "an-haiku": Price.of("0.80", "4.00", "0.08", "1.00"),
    "ge-flash": Price.of("0.10", "0.40", "0.025"),
    "ge-down": Price.of("0.10", "0.40", "0.025"),
}
CHECKS: list[Any] = ["truncation", "refusal", {"agreement": {"min_votes": 2, "mode": "exact"}}]
ECHO = "echo: the answer is 42"
OPEN = "Tell me about cheap inference."


def cascade(*models: str) -> dict[str, Any]:
    """A cascade with one model per tier, the same checks on every tier but the last."""
    tiers: list[dict[str, Any]] = [{"models": [m], "checks": CHECKS} for m in models[:-1]]
    return {"policy": "cascade", "tiers": [*tiers, {"models": [models[-1]]}]}


def config(fakes: Fakes, db: Path) -> dict[str, Any]:
    cfg = standard_config(fakes, db)
    # Providers whose every call fails with a 503 (the fakes obey x-fake-fault).
    cfg["providers"]["openai-down"] = {
        "vendor": "openai", "base_url": f"{fakes.openai.base_url}/v1",
        "api_key": FAKE_KEYS["openai"], "headers": {"x-fake-fault": "503"}}
    cfg["providers"]["gemini-down"] = {"vendor": "gemini", "base_url": fakes.gemini.base_url,
                                       "api_key": FAKE_KEYS["gemini"],
                                       "headers": {"x-fake-fault": "503"}}
    cfg["models"]["oa-down"] = {"provider": "openai-down", "model": "gpt-4o-mini",
                                "price": {"input": "0.15", "output": "0.60",
                                          "cached_input": "0.075"}}
    cfg["models"]["ge-down"] = {"provider": "gemini-down", "model": "gemini-2.5-flash",
                                "price": {"input": "0.10", "output": "0.40",
                                          "cached_input": "0.025"}}
    cfg["aliases"].update({
        "casc": cascade("oa-mini", "an-haiku", "ge-flash"),
        "casc-failing": cascade("oa-down", "oa-mini", "an-haiku", "ge-flash"),
        "casc-dead-end": cascade("oa-mini", "an-haiku", "ge-down"),
        "casc-vision": cascade("oa-text", "an-haiku", "ge-flash"),
        "casc-parallel": {"policy": "cascade", "tiers": [
            {"models": ["oa-mini", "an-haiku"], "checks": CHECKS}, {"models": ["ge-flash"]}]},
    })
    cfg["models"]["oa-text"] = {"provider": "openai", "model": "gpt-4o-mini",
                                "price": {"input": "0.15", "output": "0.60"},
                                "capabilities": ["streaming", "tools"]}
    return cfg


@pytest.fixture
async def gwc(fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> RunningGateway:
    return await gateway_factory(config(fakes, tmp_path / "ledger.db"))


client = openai_client


def served_cost(fake: RunningFake, model: str) -> list[Decimal]:
    """What each call the fake served completely costs at ``model``'s configured price."""
    return [compute_cost(s.usage, PRICES[model]) for s in fake.stats.served]


def one_row(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    assert len(rows) == 1, f"one ledger row per request, got {len(rows)}"
    return rows[0], json.loads(rows[0]["trace"])


def attempts(gw: RunningGateway, request_id: str) -> list[dict[str, Any]]:
    """The ledger's per-call rows of one request (read after ``ledger_rows`` flushed)."""
    con = sqlite3.connect(gw.db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(
            "SELECT * FROM attempts WHERE request_id = ? ORDER BY n", (request_id,))]
    finally:
        con.close()


def assert_trace_costs(row: dict[str, Any], trace: dict[str, Any]) -> None:
    total = sum((Decimal(c["cost_usd"]) for c in trace["calls"]), Decimal(0))
    assert row["cost_nano_usd"] == to_nano_usd(total)
    assert row["calls"] == len(trace["calls"])


# -- non-streaming ---------------------------------------------------------------------------


async def test_echo_prompt_is_accepted_at_the_second_tier(gwc: RunningGateway,
                                                          fakes: Fakes) -> None:
    raw = await client(gwc).chat.completions.with_raw_response.create(
        model="casc", messages=[{"role": "user", "content": ECHO}])
    r = raw.parse()
    assert r.choices[0].message.content == "the answer is 42"
    assert raw.headers["x-thrifty-calls"] == "2"
    assert raw.headers["x-thrifty-provider"] == "anthropic"  # the agreeing (latest) answer
    assert raw.headers["x-thrifty-model"] == "claude-haiku-4-5"
    assert raw.headers["x-thrifty-route"] == "alias:casc;cascade"
    assert fakes.gemini.stats.requests == 0  # the final tier was never called
    (oa,), (an,) = fakes.openai.stats.served, fakes.anthropic.stats.served
    # what the client is billed: both calls, each at its own model's price
    costs = served_cost(fakes.openai, "oa-mini") + served_cost(fakes.anthropic, "an-haiku")
    assert all(c > 0 for c in costs) and len(costs) == 2
    assert raw.headers["x-thrifty-cost-usd"] == format_usd(sum(costs, Decimal(0)))
    ext = r.model_extra["thrifty"]
    assert ext["calls"] == 2
    assert ext["cost_usd"] == raw.headers["x-thrifty-cost-usd"]
    billed = ext["billed_usage"]
    assert billed["prompt_tokens"] == oa.usage.input_tokens + an.usage.input_tokens
    assert billed["completion_tokens"] == oa.usage.output_tokens + an.usage.output_tokens
    # the answer's own usage is the accepted call's, not the sum
    assert r.usage is not None and r.usage.prompt_tokens == an.usage.input_tokens

    row, trace = one_row(await gwc.ledger_rows())
    assert row["request_id"] == raw.headers["x-thrifty-request-id"]
    assert row["status"] == 200 and row["calls"] == 2 and row["route"] == "alias:casc;cascade"
    assert row["provider"] == "anthropic" and row["upstream_model"] == "claude-haiku-4-5"
    assert row["input_tokens"] == billed["prompt_tokens"]
    assert row["output_tokens"] == billed["completion_tokens"]
    assert trace["plan"]["policy"] == "cascade" and trace["plan"]["mode"] == "cascade"
    assert trace["plan"]["tiers"] == [["oa-mini"], ["an-haiku"], ["ge-flash"]]
    calls = trace["calls"]
    assert [(c["tier"], c["model"], c["status"]) for c in calls] == [
        (0, "oa-mini", 200), (1, "an-haiku", 200)]
    assert calls[0]["verdict"].startswith("escalated") and "agreement" in calls[0]["verdict"]
    assert calls[1]["verdict"] == "accepted"
    assert [Decimal(c["cost_usd"]) for c in calls] == costs
    assert_trace_costs(row, trace)
    assert row["cost_nano_usd"] == to_nano_usd(sum(costs, Decimal(0)))
    checks = trace["checks"]
    assert [(c["tier"], c["model"], c["passed"]) for c in checks] == [
        (0, "oa-mini", False), (1, "an-haiku", True)]
    assert {r["check"] for r in checks[1]["results"]} == {"truncation", "refusal", "agreement"}
    agreement = next(r for r in checks[0]["results"] if r["check"] == "agreement")
    assert agreement["passed"] is False and "need 2" in agreement["detail"]
    # the per-call rows: what each provider reported, priced on its own
    per_call = attempts(gwc, row["request_id"])
    assert [(a["tier"], a["provider"], a["upstream_model"], a["verdict"]) for a in per_call] == [
        (0, "openai", "gpt-4o-mini", calls[0]["verdict"]),
        (1, "anthropic", "claude-haiku-4-5", "accepted")]
    assert [(a["input_tokens"], a["output_tokens"]) for a in per_call] == [
        (oa.usage.input_tokens, oa.usage.output_tokens),
        (an.usage.input_tokens, an.usage.output_tokens)]
    assert [a["cost_nano_usd"] for a in per_call] == [to_nano_usd(c) for c in costs]
    assert sum(a["cost_nano_usd"] for a in per_call) == row["cost_nano_usd"]


async def test_open_prompt_escalates_to_the_final_tier(gwc: RunningGateway,
                                                      fakes: Fakes) -> None:
    c = client(gwc)
    raw = await c.chat.completions.with_raw_response.create(
        model="casc", messages=[{"role": "user", "content": OPEN}])
    r = raw.parse()
    assert raw.headers["x-thrifty-calls"] == "3"
    assert raw.headers["x-thrifty-provider"] == "gemini"
    costs = (served_cost(fakes.openai, "oa-mini") + served_cost(fakes.anthropic, "an-haiku")
             + served_cost(fakes.gemini, "ge-flash"))
    assert len(costs) == 3
    assert raw.headers["x-thrifty-cost-usd"] == format_usd(sum(costs, Decimal(0)))
    assert r.model_extra["thrifty"]["calls"] == 3
    # the answer is exactly what the final tier's model says to this prompt
    direct = await c.chat.completions.create(
        model="ge-flash", messages=[{"role": "user", "content": OPEN}])
    cheap = await c.chat.completions.create(
        model="oa-mini", messages=[{"role": "user", "content": OPEN}])
    assert r.choices[0].message.content == direct.choices[0].message.content
    assert r.choices[0].message.content != cheap.choices[0].message.content

    rows = await gwc.ledger_rows()
    row, trace = one_row([x for x in rows if x["request_id"] == raw.headers[
        "x-thrifty-request-id"]])
    assert row["calls"] == 3 and row["provider"] == "gemini"
    calls = trace["calls"]
    assert [(c["tier"], c["model"]) for c in calls] == [
        (0, "oa-mini"), (1, "an-haiku"), (2, "ge-flash")]
    assert all(c["verdict"].startswith("escalated") for c in calls[:2])
    assert calls[2].get("verdict") == "accepted", (
        "the final tier's call answered the request, so the trace should mark it accepted "
        f"like an early tier's accepted call; got {calls[2]}")
    assert trace["escalation"].startswith("tier 1 (an-haiku)")
    assert [ch["passed"] for ch in trace["checks"]] == [False, False]
    assert_trace_costs(row, trace)


# -- streaming -------------------------------------------------------------------------------


async def collect(stream: Any) -> tuple[list[Any], str]:
    chunks = [ch async for ch in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    return chunks, text


async def test_stream_accepted_early_replays_only_the_accepted_answer(
        gwc: RunningGateway, fakes: Fakes) -> None:
    stream = await client(gwc).chat.completions.create(
        model="casc", messages=[{"role": "user", "content": "echo: hi there, friend"}],
        stream=True, stream_options={"include_usage": True})
    chunks, text = await collect(stream)
    assert text == "hi there, friend"  # exactly the accepted answer, nothing else leaked
    with_choices = [ch for ch in chunks if ch.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert all(ch.model == "claude-haiku-4-5" for ch in chunks)
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None, "the usage chunk comes last"
    ext = last.model_extra["thrifty"]
    costs = served_cost(fakes.openai, "oa-mini") + served_cost(fakes.anthropic, "an-haiku")
    assert ext["calls"] == 2 and ext["cost_usd"] == format_usd(sum(costs, Decimal(0)))
    assert ext["billed_usage"]["completion_tokens"] == sum(
        s.usage.output_tokens for f in (fakes.openai, fakes.anthropic) for s in f.stats.served)
    assert fakes.gemini.stats.requests == 0
    row, trace = one_row(await gwc.ledger_rows())
    assert row["stream"] == 1 and row["status"] == 200 and row["calls"] == 2
    assert row["request_id"] == ext["request_id"]
    assert [c["verdict"] for c in trace["calls"]][1] == "accepted"
    assert_trace_costs(row, trace)


async def test_stream_escalated_streams_the_final_tier_live(gwc: RunningGateway,
                                                            fakes: Fakes) -> None:
    c = client(gwc)
    stream = await c.chat.completions.create(
        model="casc", messages=[{"role": "user", "content": OPEN}],
        stream=True, stream_options={"include_usage": True})
    chunks, text = await collect(stream)
    costs = (served_cost(fakes.openai, "oa-mini") + served_cost(fakes.anthropic, "an-haiku")
             + served_cost(fakes.gemini, "ge-flash"))
    assert len(costs) == 3
    direct = await c.chat.completions.create(
        model="ge-flash", messages=[{"role": "user", "content": OPEN}])
    cheap = await c.chat.completions.create(
        model="an-haiku", messages=[{"role": "user", "content": OPEN}])
    assert text == direct.choices[0].message.content
    assert text != cheap.choices[0].message.content
    # streamed live: the final tier's text arrives in many deltas, not one replayed chunk
    assert sum(1 for ch in chunks if ch.choices and ch.choices[0].delta.content) > 2
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    ext = last.model_extra["thrifty"]
    assert ext["calls"] == 3 and ext["provider"] == "gemini"
    assert ext["cost_usd"] == format_usd(sum(costs, Decimal(0)))
    rows = await gwc.ledger_rows()
    row, trace = one_row([x for x in rows if x["request_id"] == ext["request_id"]])
    assert row["stream"] == 1 and row["calls"] == 3 and row["provider"] == "gemini"
    assert row["cost_nano_usd"] == to_nano_usd(sum(costs, Decimal(0)))
    assert_trace_costs(row, trace)
    assert trace["calls"][2].get("verdict") == "accepted", (
        "a streamed final tier answered the request: its call should be marked accepted "
        f"in the trace too; got {trace['calls'][2]}")


async def test_stream_accepted_early_without_include_usage_still_bills(
        gwc: RunningGateway, fakes: Fakes) -> None:
    stream = await client(gwc).chat.completions.create(
        model="casc", messages=[{"role": "user", "content": ECHO}], stream=True)
    chunks, text = await collect(stream)
    assert text == "the answer is 42"
    assert all(ch.usage is None for ch in chunks)
    costs = served_cost(fakes.openai, "oa-mini") + served_cost(fakes.anthropic, "an-haiku")
    row, trace = one_row(await gwc.ledger_rows())
    assert row["calls"] == 2 and row["cost_nano_usd"] == to_nano_usd(sum(costs, Decimal(0)))
    assert_trace_costs(row, trace)


# -- failures --------------------------------------------------------------------------------


async def test_a_failing_tier_is_recorded_and_the_cascade_goes_on(gwc: RunningGateway,
                                                                  fakes: Fakes) -> None:
    raw = await client(gwc).chat.completions.with_raw_response.create(
        model="casc-failing", messages=[{"role": "user", "content": ECHO}])
    r = raw.parse()
    assert r.choices[0].message.content == "the answer is 42"
    assert raw.headers["x-thrifty-calls"] == "3"
    assert raw.headers["x-thrifty-provider"] == "anthropic"
    assert fakes.openai.stats.outcomes["503"] == 1
    costs = served_cost(fakes.openai, "oa-mini") + served_cost(fakes.anthropic, "an-haiku")
    assert len(costs) == 2  # the failed call served nothing, so it costs nothing
    assert raw.headers["x-thrifty-cost-usd"] == format_usd(sum(costs, Decimal(0)))
    row, trace = one_row(await gwc.ledger_rows())
    calls = trace["calls"]
    assert [(c["tier"], c["model"]) for c in calls] == [
        (0, "oa-down"), (1, "oa-mini"), (2, "an-haiku")]
    assert calls[0]["status"] >= 500 and calls[0]["error"] and calls[0]["cost_usd"] == "0"
    assert calls[2]["verdict"] == "accepted"
    assert trace["checks"][0] == {"tier": 0, "passed": False,
                                  "detail": "every call of the tier failed"}
    assert row["status"] == 200 and row["calls"] == 3
    assert_trace_costs(row, trace)
    per_call = attempts(gwc, row["request_id"])
    assert [a["status"] for a in per_call][1:] == [200, 200] and per_call[0]["status"] >= 500
    assert per_call[0]["error_type"] and per_call[0]["cost_nano_usd"] == 0
    assert per_call[0]["output_tokens"] == 0


async def test_a_failing_final_tier_fails_the_request_but_bills_every_call(
        gwc: RunningGateway, fakes: Fakes) -> None:
    with pytest.raises(APIStatusError) as info:
        await client(gwc).chat.completions.create(
            model="casc-dead-end", messages=[{"role": "user", "content": OPEN}])
    assert info.value.status_code >= 500
    # the final tier is retried by the resilience layer (default: 3 rounds) before failing
    retries = gwc.gateway.resilience.policy.max_attempts
    assert fakes.gemini.stats.outcomes["503"] == retries
    costs = served_cost(fakes.openai, "oa-mini") + served_cost(fakes.anthropic, "an-haiku")
    row, trace = one_row(await gwc.ledger_rows())
    assert row["status"] == info.value.status_code and row["calls"] == 2 + retries
    assert [c["model"] for c in trace["calls"]] == ["oa-mini", "an-haiku"] + ["ge-down"] * retries
    assert all(c["status"] >= 500 for c in trace["calls"][2:])
    assert row["cost_nano_usd"] == to_nano_usd(sum(costs, Decimal(0))) > 0
    assert_trace_costs(row, trace)


# -- tiers in parallel, tiers skipped ----------------------------------------------------------


async def test_models_of_one_tier_answer_in_parallel_and_may_agree(gwc: RunningGateway,
                                                                   fakes: Fakes) -> None:
    c = client(gwc)
    raw = await c.chat.completions.with_raw_response.create(
        model="casc-parallel", messages=[{"role": "user", "content": ECHO}])
    assert raw.parse().choices[0].message.content == "the answer is 42"
    assert raw.headers["x-thrifty-calls"] == "2" and fakes.gemini.stats.requests == 0
    answered_by = raw.headers["x-thrifty-provider"]
    raw = await c.chat.completions.with_raw_response.create(
        model="casc-parallel", messages=[{"role": "user", "content": OPEN}])
    assert raw.headers["x-thrifty-calls"] == "3" and raw.headers["x-thrifty-provider"] == "gemini"
    first, second = (json.loads(r["trace"]) for r in await gwc.ledger_rows())
    assert sorted((c["tier"], c["model"]) for c in first["calls"]) == [
        (0, "an-haiku"), (0, "oa-mini")]
    accepted = [c for c in first["calls"] if c.get("verdict") == "accepted"]
    assert len(accepted) == 1 and accepted[0]["provider"] == answered_by
    assert [c["tier"] for c in second["calls"]] == [0, 0, 1]
    assert second["plan"]["tiers"] == [["oa-mini", "an-haiku"], ["ge-flash"]]


async def test_a_vision_request_skips_text_only_tiers(gwc: RunningGateway, fakes: Fakes) -> None:
    pixel = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42"
             "mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
    msgs: Any = [{"role": "user", "content": [{"type": "text", "text": OPEN},
                                              {"type": "image_url", "image_url": {"url": pixel}}]}]
    raw = await client(gwc).chat.completions.with_raw_response.create(
        model="casc-vision", messages=msgs)
    assert raw.headers["x-thrifty-calls"] == "2"  # an-haiku, then ge-flash answers
    assert fakes.openai.stats.requests == 0
    row, trace = one_row(await gwc.ledger_rows())
    assert trace["plan"]["tiers"] == [["an-haiku"], ["ge-flash"]]
    excluded = {c["model"]: c.get("excluded") for c in trace["plan"]["candidates"]}
    assert excluded["oa-text"] == "lacks vision" and excluded["an-haiku"] is None
    assert_trace_costs(row, trace)
