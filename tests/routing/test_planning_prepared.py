"""Cheap planning: lazy features, request sizes and ranking inputs prepared once per policy
give the same plans and trace values as computing everything afresh."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from thrifty.core.request import ChatRequest, RequestOptions
from thrifty.engine.planner import options_of, policy_for
from thrifty.errors import InvalidRequest
from thrifty.pricing.price import ModelInfo, Price
from thrifty.providers.base import Target
from thrifty.routing.estimate import expected_cost_usd
from thrifty.routing.features import extract_features, request_size
from thrifty.routing.policies import (
    Direct,
    EffectiveCost,
    Fallback,
    LeastBusy,
    LeastLatency,
    LowestCost,
)
from thrifty.routing.policy import Candidate, Policy, RouteContext, RoutingOptions
from thrifty.routing.stats import RouterStats
from thrifty.routing.table import Route, RouteTable

ALL = frozenset({"tools", "vision", "json_schema", "streaming"})
IMAGE = {"type": "image_url", "image_url": {"url": "https://x/y.png"}}


def target(name: str, inp: str, out: str, caps: frozenset[str] = ALL) -> Target:
    info = ModelInfo("p", name, Price.of(inp, out), 128_000, 8192, caps, "test")
    return Target(model=name, provider="p", wire="openai", upstream_model=name,
                  base_url="http://127.0.0.1:1", info=info)


FREE = target("free", "0", "0")
CHEAP = target("cheap", "0.10", "0.40")
TEXT = target("text", "0.05", "0.10", caps=frozenset({"streaming"}))
TARGETS = (CHEAP, FREE, TEXT)


def request(body: dict[str, Any], **options: Any) -> ChatRequest:
    return ChatRequest(body={"model": "r", **body}, model="r", stream=False,
                       include_usage=False, request_id="x", options=RequestOptions(**options))


def chat(text: str = "hello there", **extra: Any) -> ChatRequest:
    return request({"messages": [{"role": "user", "content": text}], **extra})


def lazy(req: ChatRequest, stats: RouterStats, options: RoutingOptions | None = None
         ) -> RouteContext:
    return RouteContext(req, None, stats, random.Random(0), 0.0, options or RoutingOptions())


def eager(req: ChatRequest, stats: RouterStats, options: RoutingOptions | None = None
          ) -> RouteContext:
    return RouteContext(req, extract_features(req), stats, random.Random(0), 0.0,
                        options or RoutingOptions())


BODIES: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "hi"}]},
    {"messages": [{"role": "system", "content": "x" * 999}, "junk",
                  {"role": "user", "content": [{"type": "text", "text": "what"}, IMAGE]}]},
    {"messages": [{"role": "user", "content": "f?"}], "functions": [{"name": "f"}]},
    {"messages": [{"role": "user", "content": "t"}], "max_tokens": 64,
     "tools": [{"type": "function", "function": {"name": "g", "parameters": {}}}],
     "response_format": {"type": "json_schema", "json_schema": {"name": "s"}}},
    {"messages": None, "response_format": {"type": "json_object"}},
]


@pytest.mark.parametrize("body", BODIES)
def test_request_size_is_the_features_size(body: dict[str, Any]) -> None:
    req = request(body)
    f = extract_features(req)
    assert request_size(req) == f.size() == (
        f.estimated_input_tokens, f.max_output_tokens, f.required_capabilities())


def test_a_lazy_context_extracts_features_only_when_read() -> None:
    req = chat(max_tokens=50)
    ctx = lazy(req, RouterStats())
    LowestCost(TARGETS).plan(ctx)
    assert ctx._features is None  # a private detail: ranking read only the size
    assert ctx.features == extract_features(req)
    assert ctx.features is ctx.features  # extracted once
    assert ctx.size() == ctx.features.size()


POLICIES: list[Callable[[], Policy]] = [
    lambda: Fallback(TARGETS), lambda: LowestCost(TARGETS), lambda: LeastLatency(TARGETS),
    lambda: LeastBusy(TARGETS), lambda: EffectiveCost(TARGETS, 500.0, 0.01),
    lambda: Direct(CHEAP)]


@pytest.mark.parametrize("make", POLICIES)
@pytest.mark.parametrize("body", BODIES[:4])
def test_lazy_and_eager_contexts_plan_the_same(make: Callable[[], Policy],
                                               body: dict[str, Any]) -> None:
    stats = RouterStats()
    stats.record(CHEAP.key, ok=True, latency_ms=700, ttft_ms=90, output_tokens=120)
    stats.started(FREE.key)
    req = request(body)
    policy = make()
    got = policy.plan(lazy(req, stats))
    assert policy.plan(lazy(req, stats)) == got == make().plan(eager(req, stats))
    for c in got.candidates:
        t = next(t for t in TARGETS if t.model == c.model)
        assert c.expected_cost_usd == expected_cost_usd(t, extract_features(req),
                                                        stats.get(t.key))


def test_a_changed_cost_or_cap_changes_the_ranking() -> None:
    stats = RouterStats()
    policy = LowestCost((CHEAP, TEXT))
    assert [c.model for c in policy.plan(lazy(chat(), stats)).candidates] == ["text", "cheap"]
    for _ in range(30):  # text's history: long answers, so it becomes the dearer one
        stats.record(TEXT.key, ok=True, latency_ms=10, output_tokens=8000)
    assert [c.model for c in policy.plan(lazy(chat(), stats)).candidates] == ["cheap", "text"]
    capped = policy.plan(lazy(chat(), stats, RoutingOptions(max_cost_usd=5e-4)))
    assert [c.excluded is None for c in capped.candidates] == [True, False]


def test_a_negative_zero_cost_cap_keeps_its_sign_in_the_exclusion() -> None:
    policy = LowestCost((CHEAP, FREE))
    stats = RouterStats()
    for cap, text in ((0.0, "max $0.000000"), (-0.0, "max $-0.000000"), (0.0, "max $0.000000")):
        plan = policy.plan(lazy(chat(), stats, RoutingOptions(max_cost_usd=cap)))
        assert plan.candidates[1].excluded is not None
        assert plan.candidates[1].excluded.endswith(text)


def test_no_eligible_model_is_still_an_error_after_a_ranking() -> None:
    policy = LowestCost((TEXT,))
    policy.plan(lazy(chat(), RouterStats()))
    with pytest.raises(InvalidRequest, match="text: lacks vision"):
        policy.plan(lazy(request({"messages": [{"role": "user", "content": [IMAGE]}]}),
                         RouterStats()))


def test_trace_values_are_rounded_to_nine_places() -> None:
    rng = random.Random(3)
    values = [rng.uniform(-1, 1) * 10 ** rng.randint(-12, 4) for _ in range(2000)]
    for v in values:
        out = Candidate("m", "p", v, v, v).to_json()
        assert out["expected_cost_usd"] == out["expected_latency_ms"] == out["score"]
        assert repr(out["score"]) == repr(round(v, 9))
    zero = Candidate("m", "p", -0.0, 0.0, 3).to_json()
    assert repr(zero["expected_cost_usd"]) == "-0.0"
    assert repr(zero["expected_latency_ms"]) == "0.0"
    assert zero["score"] == 3 and isinstance(zero["score"], int)


def test_requests_without_routing_options_share_one() -> None:
    assert options_of(chat()) is options_of(chat("other"))
    assert options_of(chat()) == RoutingOptions()
    capped = options_of(request({"messages": []}, max_cost_usd=0.5, policy="fallback"))
    assert capped == RoutingOptions(max_cost_usd=0.5, policy="fallback")


def test_a_ranking_policy_asked_for_by_name_is_built_once_per_route() -> None:
    routes = RouteTable({name: Route(name, "alias", targets, Fallback(targets)) for name, targets
                         in (("a", (CHEAP, FREE)), ("b", (CHEAP, TEXT)))})
    a, b = routes.resolve("a"), routes.resolve("b")
    first = policy_for(a, routes, "lowest-cost")
    assert policy_for(a, routes, "lowest-cost") is first
    assert first == LowestCost((CHEAP, FREE))
    assert policy_for(b, routes, "lowest-cost") == LowestCost((CHEAP, TEXT))
    assert policy_for(a, routes, "fallback") == Fallback((CHEAP, FREE))
    assert policy_for(a, routes, None) is a.policy
