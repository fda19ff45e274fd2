"""LiteLLM price map import: exact Decimal conversion, provider and id mapping, skipping."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from thrifty.errors import ConfigError
from thrifty.pricing.catalog import Catalog, CatalogEntry, catalog_to_json, parse_catalog
from thrifty.pricing.litellm_import import import_litellm
from thrifty.pricing.price import ModelInfo


def chat(provider: str, inp: float = 1.5e-07, out: float = 6e-07, **extra: Any) -> dict[str, Any]:
    return {"litellm_provider": provider, "mode": "chat", "input_cost_per_token": inp,
            "output_cost_per_token": out, "max_input_tokens": 128000,
            "max_output_tokens": 16384, **extra}


def one(data: dict[str, Any]) -> ModelInfo:
    entries, _ = import_litellm(data, source="test")
    assert len(entries) == 1, entries
    return entries[0]


@pytest.mark.parametrize(
    ("per_token", "per_million"),
    [
        (1.5e-07, "0.15"),
        (5e-08, "0.05"),  # as floats, 5e-08 * 1e6 is 0.049999999999999996
        (2.19e-06, "2.19"),  # and this one is 2.1900000000000004
        (2.5e-06, "2.5"),
        (1e-05, "10"),
        (5.5e-08, "0.055"),
        (3.625e-09, "0.003625"),
        (0, "0"),
        (7.5e-05, "75"),
    ],
)
def test_per_token_prices_become_exact_per_million(per_token: float, per_million: str) -> None:
    got = one({"m": chat("openai", inp=per_token)}).price.input
    assert got == Decimal(per_million)
    assert format(got, "f") == per_million  # plain form, no exponent


def test_cache_prices_map_and_default_to_input() -> None:
    priced = one({"claude-x": chat("anthropic", inp=3e-06, out=1.5e-05,
                                   cache_read_input_token_cost=3e-07,
                                   cache_creation_input_token_cost=3.75e-06)}).price
    assert (priced.input, priced.output, priced.cached_input, priced.cache_write) == (
        Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75"))
    plain = one({"m": chat("openai")}).price
    assert plain.cached_input == plain.cache_write == plain.input == Decimal("0.15")
    # LiteLLM's 0.0 placeholder for "no separate write price" must not make writes free
    zero_write = one({"d": chat("deepseek", cache_creation_input_token_cost=0.0)}).price
    assert zero_write.cache_write == zero_write.input


@pytest.mark.parametrize(
    ("key", "provider", "expected"),
    [
        ("gpt-4o", "openai", ("openai", "gpt-4o")),
        ("together_ai/Qwen/Qwen2.5-72B-Instruct-Turbo", "together_ai",
         ("together", "Qwen/Qwen2.5-72B-Instruct-Turbo")),
        ("fireworks_ai/accounts/fireworks/models/kimi-k3", "fireworks_ai",
         ("fireworks", "accounts/fireworks/models/kimi-k3")),
        ("groq/openai/gpt-oss-120b", "groq", ("groq", "openai/gpt-oss-120b")),
        ("gemini/gemini-2.5-flash", "gemini", ("gemini", "gemini-2.5-flash")),
        ("xai/grok-4.3", "xai", ("xai", "grok-4.3")),
        ("openrouter/openai/gpt-4o", "openrouter", ("openrouter", "openai/gpt-4o")),
        ("azure/gpt-4o", "azure", ("azure", "gpt-4o")),
        ("bedrock/anthropic.claude-v2", "bedrock", ("bedrock", "anthropic.claude-v2")),
        # a prefix is stripped only when it is the entry's own provider
        ("meta-llama/Llama-3-8b", "together_ai", ("together", "meta-llama/Llama-3-8b")),
        ("vertex_ai/gemini-2.5-pro", "vertex_ai-language-models",
         ("vertex_ai-language-models", "vertex_ai/gemini-2.5-pro")),
    ],
)
def test_provider_ids_and_model_ids(key: str, provider: str, expected: tuple[str, str]) -> None:
    got = one({key: chat(provider)})
    assert (got.provider, got.model) == expected
    assert got.source == f"test, key '{key}'"


def test_non_chat_modes_and_sample_spec_are_skipped_with_a_count() -> None:
    data = {
        "sample_spec": {"mode": "one of: chat, embedding", "litellm_provider": "x"},
        "gpt-4o": chat("openai"),
        "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding",
                                   "input_cost_per_token": 2e-08},
        "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation"},
        "whisper-1": {"litellm_provider": "openai", "mode": "audio_transcription"},
        "tts-1": {"litellm_provider": "openai", "mode": "audio_speech"},
        "size-tier": {"litellm_provider": "together_ai"},
    }
    entries, warnings = import_litellm(data, source="test")
    assert [e.key for e in entries] == ["openai/gpt-4o"]
    assert warnings[0] == ("skipped 5 non-chat entries (audio_speech: 1, audio_transcription: 1, "
                           "embedding: 1, image_generation: 1, no mode: 1)")
    assert len(warnings) == 1


def test_malformed_and_duplicate_entries_are_skipped_with_reasons() -> None:
    data = {
        "deepseek-chat": chat("deepseek", inp=2.8e-07),
        "deepseek/deepseek-chat": chat("deepseek", inp=9e-07),  # same model, later key
        "no-price": {"litellm_provider": "openai", "mode": "chat", "max_tokens": 10},
        "negative": chat("openai", inp=-1e-06),
        "no-limits": {**chat("openai"), "max_input_tokens": None, "max_output_tokens": None},
        "no-provider": {**chat("openai"), "litellm_provider": None},
        "not-an-object": 3,
    }
    entries, warnings = import_litellm(data, source="test")
    assert [(e.key, e.price.input) for e in entries] == [("deepseek/deepseek-chat",
                                                          Decimal("0.28"))]
    assert warnings == [
        "deepseek/deepseek-chat: skipped, same model as an earlier key (deepseek/deepseek-chat)",
        "no-price: skipped, no input_cost_per_token",
        "negative: skipped, input_cost_per_token is negative or not finite (-1e-06)",
        "no-limits: skipped, no max_input_tokens or max_tokens",
        "no-provider: skipped, no litellm_provider",
        "not-an-object: skipped, the value is not an object",
    ]


def test_limits_fall_back_and_output_never_exceeds_context() -> None:
    only_max = one({"m": {**chat("openai"), "max_input_tokens": None,
                          "max_output_tokens": None, "max_tokens": 8192}})
    assert (only_max.context_window, only_max.max_output) == (8192, 8192)
    clamped = one({"m": {**chat("openai"), "max_input_tokens": 4096, "max_output_tokens": 16384}})
    assert (clamped.context_window, clamped.max_output) == (4096, 4096)


def test_capability_flags_map_to_ours() -> None:
    full = one({"m": chat("openai", supports_function_calling=True, supports_vision=True,
                          supports_response_schema=True, supports_reasoning=True)})
    assert full.capabilities == {"tools", "vision", "json_schema", "reasoning", "streaming"}
    bare = one({"m": chat("openai", supports_vision=False, supports_native_streaming=False)})
    assert bare.capabilities == frozenset()


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(ConfigError, match=r"prices\.json: a LiteLLM price map is a JSON object"):
        import_litellm([1, 2], source="prices.json")


def test_imported_entries_pass_the_strict_catalog_parser() -> None:
    entries, _ = import_litellm(
        {"gpt-4o": chat("openai", cache_read_input_token_cost=7.5e-08),
         "groq/openai/gpt-oss-120b": chat("groq", supports_reasoning=True)},
        source="test",
    )
    cat = Catalog("2026-11-28", [CatalogEntry(e) for e in entries])
    again = parse_catalog(orjson.loads(orjson.dumps(catalog_to_json(cat))), origin="t")
    assert [e.info for e in again.entries()] == entries
