"""compute_cost over shipped catalog entries, checked against hand-computed Decimal sums."""

from __future__ import annotations

from decimal import Decimal

import pytest

from thrifty.core.usage import Usage
from thrifty.pricing.catalog import shipped_catalog
from thrifty.pricing.cost import compute_cost, to_nano_usd
from thrifty.pricing.price import ModelInfo


def priced(provider: str, model: str) -> ModelInfo:
    found = shipped_catalog().get(provider, model)
    assert found is not None, f"{provider}/{model} missing from the shipped catalog"
    return found


def test_anthropic_cache_reads_and_writes() -> None:
    # 10,000 prompt tokens: 6,000 read from the cache, 2,000 written to it, 2,000 fresh
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cached_input_tokens=6_000,
                  cache_write_tokens=2_000)
    cost = compute_cost(usage, priced("anthropic", "claude-sonnet-4-6").price)
    # (2000 x 3 + 6000 x 0.30 + 2000 x 3.75 + 1000 x 15) / 1e6
    assert cost == Decimal("0.0303")


def test_openai_cached_prompt_and_reasoning_inside_output() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=200_000, cached_input_tokens=400_000,
                  reasoning_tokens=50_000)
    cost = compute_cost(usage, priced("openai", "gpt-4o-mini").price)
    # (600,000 x 0.15 + 400,000 x 0.075 + 200,000 x 0.60) / 1e6; reasoning is part of output
    assert cost == Decimal("0.24")


def test_reasoning_tokens_are_not_billed_twice() -> None:
    price = priced("openai", "o3").price
    thinking = Usage(input_tokens=1_200, output_tokens=3_000, reasoning_tokens=2_500)
    plain = Usage(input_tokens=1_200, output_tokens=3_000)
    # (1200 x 2 + 3000 x 8) / 1e6
    assert compute_cost(thinking, price) == compute_cost(plain, price) == Decimal("0.0264")


def test_deepseek_cache_hit_and_miss() -> None:
    usage = Usage(input_tokens=100_000, output_tokens=5_000, cached_input_tokens=90_000)
    cost = compute_cost(usage, priced("deepseek", "deepseek-v4-flash").price)
    # (10,000 x 0.14 + 90,000 x 0.0028 + 5,000 x 0.28) / 1e6
    assert cost == Decimal("0.003052")
    assert to_nano_usd(cost) == 3_052_000


def test_gemini_cache_writes_cost_plain_input() -> None:
    usage = Usage(input_tokens=10_000, output_tokens=100, cache_write_tokens=4_000)
    cost = compute_cost(usage, priced("gemini", "gemini-2.5-flash").price)
    # (6000 x 0.30 + 4000 x 0.30 + 100 x 2.50) / 1e6
    assert cost == Decimal("0.00325")


@pytest.mark.parametrize(
    ("provider", "alias", "model"),
    [("openai", "gpt-4o-2024-08-06", "gpt-4o"),
     ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5")],
)
def test_alias_prices_like_its_model(provider: str, alias: str, model: str) -> None:
    usage = Usage(input_tokens=3_000, output_tokens=700, cached_input_tokens=1_000)
    assert compute_cost(usage, priced(provider, alias).price) == compute_cost(
        usage, priced(provider, model).price) > 0


def test_tiny_call_on_the_cheapest_model_is_not_rounded_to_zero() -> None:
    cheapest = min(shipped_catalog(), key=lambda i: i.price.input + i.price.output)
    cost = compute_cost(Usage(input_tokens=20, output_tokens=5), cheapest.price)
    assert cost > 0 and to_nano_usd(cost) > 0
