"""The shipped catalog: loads, is big and broad enough, and every entry's numbers are sane."""

from __future__ import annotations

import importlib.resources
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
import pytest

from thrifty.pricing.catalog import catalog_to_json, load_catalog, parse_catalog, shipped_catalog
from thrifty.pricing.price import CAPABILITIES, ModelInfo

KNOWN_PROVIDERS = {"openai", "anthropic", "gemini", "deepseek", "mistral", "together",
                   "fireworks", "groq", "xai", "openrouter"}


def raw_shipped() -> dict[str, Any]:
    data = importlib.resources.files("thrifty.pricing").joinpath("data", "catalog.json")
    loaded: dict[str, Any] = orjson.loads(data.read_bytes())
    return loaded


def test_shipped_catalog_is_large_broad_and_dated() -> None:
    cat = load_catalog()
    assert len(cat) >= 40
    assert len(cat.providers()) >= 8
    assert set(cat.providers()) <= KNOWN_PROVIDERS
    assert date.fromisoformat(cat.as_of) <= date(2026, 11, 28)


def test_shipped_catalog_is_read_once() -> None:
    assert shipped_catalog() is shipped_catalog()
    assert load_catalog() is shipped_catalog()


def test_prices_are_written_as_strings_never_floats() -> None:
    for entry in raw_shipped()["models"]:
        for field in ("input", "output", "cached_input", "cache_write"):
            assert entry.get(field) is None or isinstance(entry[field], str), (entry, field)


@pytest.mark.parametrize("info", list(shipped_catalog()), ids=lambda i: i.key)
def test_every_entry_is_sane(info: ModelInfo) -> None:
    price = info.price
    assert info.source.strip() and "2026" in info.source  # says where and when
    assert price.input > 0 and price.output > 0
    assert Decimal(0) <= price.cached_input <= price.input
    assert price.cache_write >= price.input  # a cache write never costs less than a plain read
    assert 0 < info.max_output <= info.context_window
    assert info.capabilities <= CAPABILITIES and "streaming" in info.capabilities


def test_output_costs_at_least_input_for_almost_all() -> None:
    entries = list(shipped_catalog())
    cheaper_output = [i.key for i in entries if i.price.output < i.price.input]
    assert len(cheaper_output) <= len(entries) // 20, cheaper_output


def test_anthropic_cache_prices_follow_the_published_multipliers() -> None:
    for info in shipped_catalog().models("anthropic"):
        assert info.price.cache_write == info.price.input * Decimal("1.25"), info.key
        assert info.price.cached_input <= info.price.input * Decimal("0.1"), info.key


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-sonnet-4-6"),
        ("deepseek", "deepseek-v4-flash"),
        ("mistral", "mistral-small-latest"),
        ("gemini", "gemini-2.5-flash"),
        ("together", "Qwen/Qwen2.5-72B-Instruct"),
        ("together", "meta-llama/Llama-3.1-405B-Instruct"),
        ("fireworks", "accounts/fireworks/models/llama-v3p1-405b-instruct"),
        ("groq", "openai/gpt-oss-120b"),
        ("xai", "grok-4.3"),
    ],
)
def test_seed_and_current_models_are_present(provider: str, model: str) -> None:
    assert shipped_catalog().get(provider, model) is not None


def test_catalog_json_round_trips_exactly() -> None:
    cat = shipped_catalog()
    again = parse_catalog(orjson.loads(orjson.dumps(catalog_to_json(cat))), origin="round trip")
    assert again.as_of == cat.as_of
    assert again.entries() == cat.entries()
