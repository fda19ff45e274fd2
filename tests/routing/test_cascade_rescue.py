"""The cascade's rescue budget, as pure functions: what the final tier's answer is expected
to cost, read off the earlier answers' usage, and which earlier answer stands in for it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from thrifty.config.schema import RouteConfig
from thrifty.core.usage import Usage
from thrifty.pricing.price import ModelInfo, Price
from thrifty.providers.base import Target
from thrifty.routing.build import build_policy
from thrifty.routing.cascade import Cascade, fallback_index, rescue_answer_usd
from thrifty.routing.policy import Tier
from thrifty.routing.table import RouteTable


def target(model: str, out_per_mtok: str = "15") -> Target:
    info = ModelInfo("fake", model, Price.of(Decimal("3"), Decimal(out_per_mtok)), 128_000,
                     4096, frozenset(), "test")
    return Target(model=model, provider="fake", wire="openai", upstream_model=model,
                  base_url="http://127.0.0.1:1", info=info)


def test_the_expected_answer_is_the_median_length_at_the_output_price() -> None:
    usages = [Usage(input_tokens=50_000, output_tokens=n) for n in (100, 400, 1000)]
    # median 400 tokens x $15/M; the 50k-token prompt is not counted
    assert rescue_answer_usd(target("strong"), usages) == pytest.approx(0.006)
    assert rescue_answer_usd(target("strong", "10"), usages[:2]) == pytest.approx(0.0025)
    assert rescue_answer_usd(target("strong"), []) is None


def test_the_fallback_is_the_marked_tiers_answer_else_the_latest() -> None:
    a, b, c = target("a"), target("b"), target("c")
    early = (Tier((a,)), Tier((b,), fallback=True), Tier((c,)))
    assert fallback_index(early, ["a", "b", "c"]) == 1
    assert fallback_index(early, ["a", "c"]) == 1  # b failed: the latest stands in
    assert fallback_index((Tier((a,)), Tier((c,))), ["a", "c"]) == 1
    assert fallback_index((Tier((a,), fallback=True),), ["a"]) == 0


def test_config_carries_the_budget_to_the_planned_final_tier() -> None:
    table = {m: target(m) for m in ("cheap", "mid", "strong")}
    cfg = RouteConfig.model_validate({"policy": "cascade", "tiers": [
        {"models": ["cheap"], "checks": ["refusal"], "fallback": True},
        {"models": ["mid"], "checks": ["refusal"]},
        {"models": ["strong"], "max_answer_usd": 0.01}]})
    policy, _ = build_policy("r", cfg, table, RouteTable({}))
    assert isinstance(policy, Cascade)
    assert [t.fallback for t in policy.tiers] == [True, False, False]
    assert policy.tiers[-1].max_answer_usd == 0.01
    with pytest.raises(ValueError):
        RouteConfig.model_validate({"policy": "cascade", "tiers": [
            {"models": ["strong"], "max_answer_usd": 0}]})
