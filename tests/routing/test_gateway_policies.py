"""Routing policies end to end through the real gateway on real HTTP with the official openai
SDK: ranking policies (lowest-cost, weighted with a seeded rng, least-busy), the per-request
routing options (cost cap, policy override, unknown policy, capabilities), rules that
delegate to other aliases, feedback on learned routes, and the shipped ``auto`` route."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import BadRequestError, NotFoundError
from tests.conftest import (
    FAKE_KEYS,
    Fakes,
    GatewayFactory,
    RunningGateway,
    openai_client,
    standard_config,
)

from thrifty.routing.learned.dataset import Price, Row
from thrifty.routing.learned.synthetic import PRICES, synthetic_rows
from thrifty.routing.learned.train import TrainSpec, fit_router, prepare

PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
TOOL = {"type": "function", "function": {
    "name": "lookup", "description": "Look a word up",
    "parameters": {"type": "object", "properties": {"word": {"type": "string"}},
                   "required": ["word"]}}}
ECHO = [{"role": "user", "content": "echo: ok"}]


def config(fakes: Fakes, db: Path) -> dict[str, Any]:
    cfg = standard_config(fakes, db)
    cfg["providers"]["openai-slow"] = {
        "vendor": "openai", "base_url": f"{fakes.openai.base_url}/v1",
        "api_key": FAKE_KEYS["openai"], "headers": {"x-fake-latency-ms": "400"}}
    cfg["models"]["oa-slow"] = {"provider": "openai-slow", "model": "gpt-4o-mini",
                                "price": {"input": "0.15", "output": "0.60"}}
    cfg["models"]["oa-text"] = {"provider": "openai", "model": "gpt-4o-mini",
                                "price": {"input": "0.15", "output": "0.60"},
                                "capabilities": ["streaming", "tools"]}
    cfg["aliases"].update({
        "cheapest": {"policy": "lowest-cost", "models": ["an-haiku", "oa-o3", "oa-mini",
                                                         "ge-flash"]},
        "pricey-first": ["an-haiku", "oa-mini"],
        "spread": {"policy": "weighted", "models": ["oa-mini", "an-haiku", "ge-flash"],
                   "weights": {"oa-mini": 6, "an-haiku": 3, "ge-flash": 1}},
        "busy": {"policy": "least-busy", "models": ["oa-slow", "an-haiku"]},
        "text-only": ["oa-text"],
        "by-kind": {"policy": "rules", "rules": [
            {"name": "asserts", "when": {"text": {"matches": r"^\s*assert\s"}},
             "use": {"route": "cheapest"}},
            {"name": "tools", "when": {"has_tools": True}, "use": {"route": "pricey-first"}},
            {"default": {"route": "oa-o3"}},  # a plain model is a route too
        ]},
    })
    return cfg


@pytest.fixture
async def gwp(fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> RunningGateway:
    return await gateway_factory(config(fakes, tmp_path / "ledger.db"))


client = openai_client


async def headers_of(gw: RunningGateway, model: str, messages: Any = ECHO,
                     **kw: Any) -> dict[str, str]:
    raw = await client(gw).chat.completions.with_raw_response.create(
        model=model, messages=messages, **kw)
    raw.parse()
    return {k: v for k, v in raw.headers.items() if k.startswith("x-thrifty")}


def error_of(exc: BadRequestError | NotFoundError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict)
    return body.get("error", body)  # the SDK hands back the "error" object itself


# -- ranking policies ------------------------------------------------------------------------


async def test_lowest_cost_picks_the_cheapest_model(gwp: RunningGateway) -> None:
    h = await headers_of(gwp, "cheapest")
    assert h["x-thrifty-model"] == "gemini-2.5-flash"  # 0.10/0.40 beats 0.15/0.60 and up
    assert h["x-thrifty-route"] == "alias:cheapest;lowest-cost"
    row = (await gwp.ledger_rows())[0]
    plan = json.loads(row["trace"])["plan"]
    assert plan["policy"] == "lowest-cost"
    assert plan["tiers"] == [["ge-flash"], ["oa-mini"], ["an-haiku"], ["oa-o3"]]
    costs = [c["expected_cost_usd"] for c in plan["candidates"]]
    assert costs == sorted(costs)


async def test_weighted_spreads_requests_reproducibly_with_a_seeded_rng(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    picks: list[list[str]] = []
    for run in range(2):
        gw = await gateway_factory(config(fakes, tmp_path / f"ledger-{run}.db"))
        gw.gateway.rng = random.Random(0)  # the planner reads the gateway's rng per request
        picks.append([(await headers_of(gw, "spread"))["x-thrifty-model"] for _ in range(30)])
    assert picks[0] == picks[1], "the same seed must give the same spread"
    counts = Counter(picks[0])
    assert counts["gpt-4o-mini"] > counts["claude-haiku-4-5"] > 0  # weights 6 : 3 : 1
    assert len(counts) >= 2


async def test_least_busy_avoids_the_model_with_a_request_in_flight(
        gwp: RunningGateway, fakes: Fakes) -> None:
    first = asyncio.create_task(headers_of(gwp, "busy"))
    for _ in range(200):  # until the slow provider holds the first request
        if fakes.openai.stats.requests:
            break
        await asyncio.sleep(0.005)
    assert fakes.openai.stats.requests == 1
    second = await headers_of(gwp, "busy")
    assert second["x-thrifty-model"] == "claude-haiku-4-5"
    assert not first.done()
    assert (await first)["x-thrifty-provider"] == "openai-slow"
    third = await headers_of(gwp, "busy")  # nothing in flight: the configured order again
    assert third["x-thrifty-provider"] == "openai-slow"


async def test_max_cost_excludes_expensive_models(gwp: RunningGateway) -> None:
    # With no history a model is expected to write 300 tokens: about $0.0012 on an-haiku and
    # $0.00018 on oa-mini. (Capped requests first: an answered request teaches the stats
    # how short these echo answers are, and the expectation drops.)
    h = await headers_of(gwp, "pricey-first", extra_body={"thrifty": {"max_cost_usd": 0.0005}})
    assert h["x-thrifty-model"] == "gpt-4o-mini"
    h = await headers_of(gwp, "pricey-first", extra_headers={"x-thrifty-max-cost-usd": "0.0005"})
    assert h["x-thrifty-model"] == "gpt-4o-mini"
    assert (await headers_of(gwp, "pricey-first"))["x-thrifty-model"] == "claude-haiku-4-5"
    row = (await gwp.ledger_rows())[0]
    cands = {c["model"]: c for c in json.loads(row["trace"])["plan"]["candidates"]}
    assert "excluded" in cands["an-haiku"] and "max" in cands["an-haiku"]["excluded"]
    assert "excluded" not in cands["oa-mini"]
    with pytest.raises(BadRequestError) as info:
        await headers_of(gwp, "pricey-first", extra_body={"thrifty": {"max_cost_usd": 1e-9}})
    err = error_of(info.value)
    assert err["code"] == "no_eligible_model" and err["param"] == "model"
    assert "an-haiku" in err["message"] and "oa-mini" in err["message"]


async def test_policy_header_overrides_the_alias_policy(gwp: RunningGateway) -> None:
    h = await headers_of(gwp, "pricey-first", extra_headers={"x-thrifty-policy": "lowest-cost"})
    assert h["x-thrifty-model"] == "gpt-4o-mini"
    assert h["x-thrifty-route"] == "alias:pricey-first;lowest-cost"
    h = await headers_of(gwp, "pricey-first", extra_body={"thrifty": {"policy": "lowest-cost"}})
    assert h["x-thrifty-model"] == "gpt-4o-mini"


@pytest.mark.parametrize("where", ["body", "header"])
async def test_unknown_policy_is_a_400_naming_the_param(gwp: RunningGateway, where: str) -> None:
    kw: dict[str, Any] = ({"extra_body": {"thrifty": {"policy": "cheapest-please"}}}
                          if where == "body" else
                          {"extra_headers": {"x-thrifty-policy": "cheapest-please"}})
    with pytest.raises(BadRequestError) as info:
        await headers_of(gwp, "pricey-first", **kw)
    err = error_of(info.value)
    assert err["param"] == "thrifty.policy"
    assert "cheapest-please" in err["message"] and "lowest-cost" in err["message"]
    rows = await gwp.ledger_rows()
    assert [r["status"] for r in rows] == [400]


async def test_image_on_a_route_without_vision_is_no_eligible_model(gwp: RunningGateway) -> None:
    msgs = [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": PIXEL}}]}]
    with pytest.raises(BadRequestError) as info:
        await headers_of(gwp, "text-only", messages=msgs)
    err = error_of(info.value)
    assert err["code"] == "no_eligible_model" and err["param"] == "model"
    assert "vision" in err["message"]
    assert (await headers_of(gwp, "text-only"))["x-thrifty-model"] == "gpt-4o-mini"


# -- rules -----------------------------------------------------------------------------------


async def test_rules_delegate_by_text_and_tools(gwp: RunningGateway) -> None:
    h = await headers_of(gwp, "by-kind", [{"role": "user", "content": "assert f(1) == 2"}])
    assert h["x-thrifty-model"] == "gemini-2.5-flash"  # via `cheapest` (lowest-cost)
    assert h["x-thrifty-route"].startswith("alias:by-kind;lowest-cost;rules:by-kind#0(asserts)")
    h = await headers_of(gwp, "by-kind", tools=[TOOL])
    assert h["x-thrifty-model"] == "claude-haiku-4-5"  # via `pricey-first` (fallback)
    assert h["x-thrifty-route"].startswith("alias:by-kind;fallback;rules:by-kind#1(tools)")
    h = await headers_of(gwp, "by-kind")
    assert h["x-thrifty-model"] == "o3-mini"
    assert h["x-thrifty-route"].startswith("alias:by-kind;direct;rules:by-kind#2")
    rows = await gwp.ledger_rows()
    assert [json.loads(r["trace"])["plan"]["via"][0] for r in rows] == [
        "rules:by-kind#0(asserts)", "rules:by-kind#1(tools)", "rules:by-kind#2"]


async def test_rules_with_their_own_model_lists_load_and_route(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    cfg = config(fakes, tmp_path / "ledger.db")
    cfg["aliases"]["by-size"] = {"policy": "rules", "rules": [
        {"name": "long", "when": {"last_user_chars": {"gt": 200}},
         "use": {"models": ["an-haiku", "oa-mini"], "policy": "lowest-cost"}},
        {"default": {"models": ["an-haiku", "oa-o3"]}},
    ]}
    try:
        gw = await gateway_factory(cfg)
    except TypeError as exc:
        pytest.fail("a rules alias whose rules list models fails to load: routing/build.py "
                    "_rules() dedupes targets with dict.fromkeys(used), but Target holds dicts "
                    f"(headers, rename_params) and is unhashable ({exc})")
    long_text = [{"role": "user", "content": "echo: " + "word " * 60}]
    h = await headers_of(gw, "by-size", long_text)
    assert h["x-thrifty-model"] == "gpt-4o-mini"
    assert h["x-thrifty-route"] == "alias:by-size;lowest-cost;rules:by-size#0(long)"
    h = await headers_of(gw, "by-size")
    assert h["x-thrifty-model"] == "claude-haiku-4-5"
    assert h["x-thrifty-route"] == "alias:by-size;fallback;rules:by-size#1"


# -- feedback --------------------------------------------------------------------------------

NAMES = {"small-model": "ge-flash", "mid-model": "oa-mini", "big-model": "an-haiku"}
ARITHMETIC = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def train_router(out: Path) -> None:
    """A tiny lexical router over the standard models, from the shipped synthetic rows."""
    rows = [Row(r["id"], r["source"], r["prompt"], r["prompt_tokens"],
                {NAMES[m]: v["quality"] for m, v in r["models"].items()},
                {NAMES[m]: v["output_tokens"] for m, v in r["models"].items()})
            for r in synthetic_rows(90, 0)]
    prices = {NAMES[m]: Price(p["input_per_mtok"], p["output_per_mtok"])
              for m, p in PRICES.items()}
    data = prepare(rows, tuple(sorted(NAMES.values())), prices, "lexical", None)
    fit_router(data, TrainSpec(), None).save(out)


async def post_feedback(gw: RunningGateway, body: Any) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiohttp.ClientSession() as s, s.post(
            f"{gw.v1}/thrifty/feedback", data=data,
            headers={"content-type": "application/json"}) as resp:
        return resp.status, await resp.json()


async def test_feedback_is_stored_and_refines_the_learned_route(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    train_router(tmp_path / "router")
    cfg = config(fakes, tmp_path / "ledger.db")
    cfg["aliases"]["smart"] = {"policy": "learned", "router": str(tmp_path / "router")}
    gw = await gateway_factory(cfg)
    # the request's floor: the cheapest model predicted at least this good
    h = await headers_of(gw, "smart", [{"role": "user", "content": ARITHMETIC}],
                         extra_body={"thrifty": {"quality_floor": 0.9}})
    rid = h["x-thrifty-request-id"]
    assert h["x-thrifty-route"] == "alias:smart;learned"
    assert h["x-thrifty-model"] == "gemini-2.5-flash"  # small-model handles arithmetic
    router = gw.gateway.routes.policy_for("smart").router  # type: ignore[attr-defined]
    before = router.predict(ARITHMETIC)["ge-flash"]
    assert 0.1 < before < 1.0
    status, reply = await post_feedback(gw, {"request_id": rid, "score": 0.0})
    assert status == 200
    assert reply == {"request_id": rid, "stored": True, "router_updated": True,
                     "model": "ge-flash"}
    after = router.predict(ARITHMETIC)["ge-flash"]
    assert 0.0 < after < before, "the prediction moves toward the score, not past it"
    # the same request again: stored, but the router already learned from it
    status, again = await post_feedback(gw, {"request_id": rid, "score": 0.0})
    assert status == 200 and again["router_updated"] is False and again["stored"] is True
    assert router.predict(ARITHMETIC)["ge-flash"] == after
    con = sqlite3.connect(gw.db)
    try:
        stored = con.execute("SELECT request_id, score, model, route FROM feedback "
                             "ORDER BY id").fetchall()
    finally:
        con.close()
    assert len(stored) == 2 and stored[0] == (rid, 0.0, "ge-flash", "smart")
    assert stored[1][:2] == (rid, 0.0)


async def test_feedback_on_a_plain_request_is_stored_without_a_router(
        gwp: RunningGateway) -> None:
    rid = (await headers_of(gwp, "oa-mini"))["x-thrifty-request-id"]
    status, reply = await post_feedback(gwp, {"request_id": rid, "score": 1})
    assert status == 200 and reply["stored"] is True and reply["router_updated"] is False
    con = sqlite3.connect(gwp.db)
    try:
        assert con.execute("SELECT request_id, score FROM feedback").fetchall() == [(rid, 1.0)]
    finally:
        con.close()


@pytest.mark.parametrize(("body", "param"), [
    ({"score": 0.5}, "request_id"),
    ({"request_id": "", "score": 0.5}, "request_id"),
    ({"request_id": 7, "score": 0.5}, "request_id"),
    ({"request_id": "thr-x"}, "score"),
    ({"request_id": "thr-x", "score": 1.5}, "score"),
    ({"request_id": "thr-x", "score": -0.1}, "score"),
    ({"request_id": "thr-x", "score": True}, "score"),
    ({"request_id": "thr-x", "score": "0.5"}, "score"),
    (b"{not json", None),
    ([1, 2], None),
])
async def test_feedback_bad_bodies_are_400s_naming_the_param(
        gwp: RunningGateway, body: Any, param: str | None) -> None:
    status, reply = await post_feedback(gwp, body)
    assert status == 400
    assert reply["error"]["param"] == param
    assert reply["error"]["type"] == "invalid_request_error"


# -- the shipped auto route ------------------------------------------------------------------


def auto_config(fakes: Fakes, db: Path) -> dict[str, Any]:
    def priced(provider: str, i: str, o: str) -> dict[str, Any]:
        return {"provider": provider, "price": {"input": i, "output": o}}

    return {
        "providers": {
            "openai": {"base_url": f"{fakes.openai.base_url}/v1", "api_key": FAKE_KEYS["openai"]},
            "deepseek": {"base_url": f"{fakes.openai.base_url}/v1",
                         "api_key": FAKE_KEYS["openai"]},
            "anthropic": {"base_url": fakes.anthropic.base_url,
                          "api_key": FAKE_KEYS["anthropic"]},
            "gemini": {"base_url": fakes.gemini.base_url, "api_key": FAKE_KEYS["gemini"]},
        },
        "models": {
            "gpt-4o-mini": priced("openai", "0.15", "0.60"),
            "deepseek-v4-flash": priced("deepseek", "0.14", "0.28"),
            "gemini-2.5-flash-lite": priced("gemini", "0.10", "0.40"),
            "gpt-4o": priced("openai", "2.50", "10.00"),
            "claude-sonnet-4-6": priced("anthropic", "3.00", "15.00"),
        },
        "ledger": {"path": str(db)},
    }


async def test_auto_sends_a_python_assert_prompt_to_auto_code(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory(auto_config(fakes, tmp_path / "ledger.db"))
    listed = {m.id async for m in client(gw).models.list()}
    assert {"auto", "auto-code", "auto-math", "auto-general"} <= listed
    code = "echo: [PYTHON]\ndef add(a, b):\n    return a + b\n[/PYTHON]\nassert add(2, 3) == 5"
    raw = await client(gw).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": code}])
    r = raw.parse()
    assert r.choices[0].message.content == code[len("echo:"):].strip()
    assert raw.headers["x-thrifty-calls"] == "2"  # two cheap models agreed
    assert raw.headers["x-thrifty-model"] == "gpt-4o-mini"
    row = (await gw.ledger_rows())[0]
    plan = json.loads(row["trace"])["plan"]
    assert plan["policy"] == "cascade" and plan["via"][0] == "rules:auto#0(code)"
    assert plan["tiers"] == [["deepseek-v4-flash"], ["gpt-4o-mini"], ["gpt-4o"]]
    h = await headers_of(gw, "auto", [{"role": "user", "content": "assert add(2, 3) == 5"}])
    assert "rules:auto#0(code)" in h["x-thrifty-route"]
    assert "auto-code" in h["x-thrifty-route"], (
        "x-thrifty-route should name the route a rule delegated to (policy.py's Plan.via: "
        f"'routes and rules passed through'); got {h['x-thrifty-route']!r}")


async def test_no_usable_models_means_no_auto(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    cfg = {"providers": {"local": {"vendor": "vllm", "base_url": f"{fakes.openai.base_url}/v1",
                                   "api_key": FAKE_KEYS["openai"]}},
           "models": {"house-model": {"provider": "local", "price": 0}},
           "ledger": {"path": str(tmp_path / "ledger.db")}}
    gw = await gateway_factory(cfg)
    assert [m.id async for m in client(gw).models.list()] == ["house-model"]
    with pytest.raises(NotFoundError) as info:
        await headers_of(gw, "auto")
    assert error_of(info.value)["param"] == "model"
    assert (await headers_of(gw, "house-model"))["x-thrifty-model"] == "house-model"
