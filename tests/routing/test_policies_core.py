"""The ranking and cascade policies, pure: synthetic targets, a seeded rng, hand-set stats."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from thrifty.core.request import ChatRequest
from thrifty.errors import InvalidRequest
from thrifty.pricing.price import ModelInfo, Price
from thrifty.providers.base import Target
from thrifty.routing.cascade import Cascade
from thrifty.routing.estimate import Constraints, expected_cost_usd
from thrifty.routing.features import extract_features
from thrifty.routing.policies import (
    EffectiveCost,
    Fallback,
    LeastBusy,
    LeastLatency,
    LowestCost,
    Weighted,
    effective_cost,
)
from thrifty.routing.policy import RouteContext, RoutingOptions, Tier
from thrifty.routing.stats import ModelStats, RouterStats

ALL = frozenset({"tools", "vision", "json_schema", "streaming"})


def target(name: str, inp: str, out: str, *, caps: frozenset[str] = ALL, ctx: int = 128_000,
           provider: str = "p", region: str | None = None) -> Target:
    info = ModelInfo(provider, name, Price.of(inp, out), ctx, 8192, caps, "test")
    return Target(model=name, provider=provider, wire="openai", upstream_model=name,
                  base_url="http://127.0.0.1:1", info=info, region=region)


CHEAP = target("cheap", "0.10", "0.40")
MID = target("mid", "1.00", "4.00", provider="q", region="eu")
PREMIUM = target("premium", "5.00", "20.00", provider="r", region="us")
TEXT_ONLY = target("text-only", "0.05", "0.10", caps=frozenset({"streaming"}), ctx=4096)
ALL_TARGETS = (PREMIUM, MID, CHEAP, TEXT_ONLY)


def ctx(body_extra: dict | None = None, *, stats: RouterStats | None = None, seed: int = 0,
        options: RoutingOptions | None = None, content: object = "hello there") -> RouteContext:
    body = {"model": "r", "messages": [{"role": "user", "content": content}],
            **(body_extra or {})}
    req = ChatRequest(body=body, model="r", stream=False, include_usage=False, request_id="x")
    return RouteContext(req, extract_features(req), stats or RouterStats(), random.Random(seed),
                        0.0, options or RoutingOptions())


def order(plan) -> list[str]:
    return [t.model for t in plan.tiers_targets()]


def test_fallback_keeps_order_and_lists_exclusions() -> None:
    plan = Fallback(ALL_TARGETS).plan(ctx({"tools": [{"type": "function",
                                                      "function": {"name": "f"}}]}))
    assert order(plan) == ["premium", "mid", "cheap"]
    excluded = {c.model: c.excluded for c in plan.candidates if c.excluded}
    assert excluded == {"text-only": "lacks tools"}
    assert plan.mode == "fallback"


def test_lowest_cost_orders_by_expected_dollars() -> None:
    plan = LowestCost(ALL_TARGETS).plan(ctx())
    assert order(plan) == ["text-only", "cheap", "mid", "premium"]
    costs = [c.expected_cost_usd for c in plan.candidates]
    assert costs == sorted(costs)


def test_capabilities_context_and_cost_cap_exclude() -> None:
    image = [{"type": "text", "text": "what is this"},
             {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    plan = LowestCost(ALL_TARGETS).plan(ctx(content=image))
    assert "text-only" not in order(plan)
    long_prompt = "word " * 20_000  # ~25k tokens: over text-only's 4k window
    plan = LowestCost(ALL_TARGETS).plan(ctx(content=long_prompt))
    assert order(plan)[0] == "cheap"
    cap = LowestCost(ALL_TARGETS).plan(ctx(options=RoutingOptions(max_cost_usd=0.001)))
    assert "premium" not in order(cap)
    assert any(c.excluded and c.excluded.startswith("expected $") for c in cap.candidates)


def test_provider_and_region_constraints() -> None:
    plan = LowestCost(ALL_TARGETS, Constraints(regions=frozenset({"eu"}))).plan(ctx())
    assert order(plan) == ["mid"]
    plan = Fallback(ALL_TARGETS, Constraints(providers=frozenset({"p", "r"}))).plan(ctx())
    assert order(plan) == ["premium", "cheap", "text-only"]
    with pytest.raises(InvalidRequest) as info:
        Fallback(ALL_TARGETS, Constraints(regions=frozenset({"mars"}))).plan(ctx())
    assert info.value.code == "no_eligible_model"


def test_weighted_order_follows_weights_and_seed() -> None:
    policy = Weighted((CHEAP, MID), {"cheap": 3.0, "mid": 1.0})
    firsts = Counter(order(policy.plan(ctx(seed=s)))[0] for s in range(4000))
    assert 0.70 < firsts["cheap"] / 4000 < 0.80  # expected 0.75
    assert order(policy.plan(ctx(seed=7))) == order(policy.plan(ctx(seed=7)))


def test_least_latency_prefers_fast_and_explores_unknown() -> None:
    stats = RouterStats()
    stats.record(CHEAP.key, ok=True, latency_ms=900, ttft_ms=300)
    stats.record(MID.key, ok=True, latency_ms=200, ttft_ms=50)
    plan = LeastLatency((CHEAP, MID, PREMIUM)).plan(ctx(stats=stats))
    assert order(plan) == ["premium", "mid", "cheap"]  # premium never measured: tried first


def test_least_busy_uses_in_flight_counts() -> None:
    stats = RouterStats()
    for _ in range(3):
        stats.started(CHEAP.key)
    stats.started(MID.key)
    plan = LeastBusy((CHEAP, MID, PREMIUM)).plan(ctx(stats=stats))
    assert order(plan) == ["premium", "mid", "cheap"]
    for _ in range(3):
        stats.finished(CHEAP.key)
    assert stats.get(CHEAP.key).in_flight == 0


def test_effective_cost_prices_latency_beyond_the_budget() -> None:
    stats = RouterStats()
    slow_cheap = target("slow-cheap", "0.10", "0.40")
    fast_mid = target("fast-mid", "0.30", "1.20")
    for _ in range(5):
        stats.record(slow_cheap.key, ok=True, latency_ms=3000, output_tokens=300)
        stats.record(fast_mid.key, ok=True, latency_ms=400, output_tokens=300)
    free = EffectiveCost((slow_cheap, fast_mid), latency_budget_ms=1000,
                         latency_price_usd_per_s=0.0)
    assert order(free.plan(ctx(stats=stats)))[0] == "slow-cheap"
    priced = EffectiveCost((slow_cheap, fast_mid), latency_budget_ms=1000,
                           latency_price_usd_per_s=0.001)
    assert order(priced.plan(ctx(stats=stats)))[0] == "fast-mid"
    # a per-request budget overrides the route's: with 5 s to spare, cheap wins again
    relaxed = priced.plan(ctx(stats=stats, options=RoutingOptions(latency_budget_ms=5000)))
    assert order(relaxed)[0] == "slow-cheap"


def test_effective_cost_counts_retries_and_parse_failures() -> None:
    flaky = ModelStats(samples=10, error_rate=0.5)
    assert effective_cost(1.0, flaky, None, 0.0) == pytest.approx(2.0)
    assert effective_cost(1.0, ModelStats(parse_failure_rate=0.2), None, 0.0) == pytest.approx(
        1.25)
    assert effective_cost(1.0, ModelStats(latency_ms=3000), 1000, 0.5) == pytest.approx(2.0)


def test_expected_cost_uses_output_history() -> None:
    stats = RouterStats()
    c = ctx()
    before = expected_cost_usd(CHEAP, c.features, stats.get(CHEAP.key))
    for _ in range(20):
        stats.record(CHEAP.key, ok=True, latency_ms=10, output_tokens=2000)
    after = expected_cost_usd(CHEAP, c.features, stats.get(CHEAP.key))
    assert after > before
    assert after == pytest.approx((c.features.estimated_input_tokens * 0.10
                                   + stats.get(CHEAP.key).output_tokens * 0.40) / 1e6)


def test_cascade_skips_tiers_that_cannot_serve_and_ends_unconditionally() -> None:
    tiers = (Tier((TEXT_ONLY,), ("check",)), Tier((CHEAP, MID), ("check",)),
             Tier((PREMIUM,), ("check",)))
    plan = Cascade(tiers).plan(ctx())
    assert plan.mode == "cascade" and [len(t.targets) for t in plan.tiers] == [1, 2, 1]
    assert plan.tiers[-1].checks == ()
    image = [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    plan = Cascade(tiers).plan(ctx(content=image))
    assert [t.targets[0].model for t in plan.tiers] == ["cheap", "premium"]


def test_router_stats_ewma_and_error_rate() -> None:
    stats = RouterStats()
    stats.record("k", ok=True, latency_ms=100)
    stats.record("k", ok=False, latency_ms=5)
    s = stats.get("k")
    assert s.samples == 2 and s.latency_ms == 100 and s.error_rate == pytest.approx(0.2)
    assert Decimal(str(s.error_rate)) > 0
