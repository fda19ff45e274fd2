"""Converts a LiteLLM price map (``model_prices_and_context_window.json``) into catalog entries.
Owns the mapping of LiteLLM's field and provider names to ours and the exact per-token to
per-million conversion. It must not read or write files (the ``prices`` CLI does) and keeps
only chat models: embeddings, images and audio are priced in other units.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from thrifty.errors import ConfigError
from thrifty.pricing.price import ModelInfo, Price

_MILLION = Decimal(1_000_000)

# LiteLLM provider name -> catalog provider id; names not listed are kept as LiteLLM spells them
PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "deepseek": "deepseek",
    "mistral": "mistral",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "groq": "groq",
    "xai": "xai",
    "openrouter": "openrouter",
    "azure": "azure",
}

_CAPABILITY_FLAGS = {
    "supports_function_calling": "tools",
    "supports_vision": "vision",
    "supports_response_schema": "json_schema",
    "supports_reasoning": "reasoning",
}


class _Skip(Exception):
    """An entry that cannot become a catalog entry; the message says why."""


def import_litellm(data: object, *, source: str) -> tuple[list[ModelInfo], list[str]]:
    """Chat entries of a LiteLLM price map, and warnings for everything left out.

    Prices go from USD per token to USD per million tokens through ``Decimal(str(x))`` so
    1.5e-07 becomes exactly 0.15. When two LiteLLM keys name the same provider/model (for
    example ``deepseek-chat`` and ``deepseek/deepseek-chat``) the first one is kept."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a LiteLLM price map is a JSON object keyed by model name, "
            f"got {type(data).__name__}; pass model_prices_and_context_window.json"
        )
    entries: dict[str, ModelInfo] = {}
    warnings: list[str] = []
    not_chat: Counter[str] = Counter()
    for key, raw in data.items():
        if key == "sample_spec":
            continue
        if not isinstance(raw, dict):
            warnings.append(f"{key}: skipped, the value is not an object")
            continue
        mode = raw.get("mode")
        if mode != "chat":
            not_chat[str(mode) if mode is not None else "no mode"] += 1
            continue
        try:
            info = _entry(str(key), raw, source)
        except _Skip as exc:
            warnings.append(f"{key}: skipped, {exc}")
            continue
        if info.key in entries:
            warnings.append(f"{key}: skipped, same model as an earlier key ({info.key})")
            continue
        entries[info.key] = info
    if not_chat:
        detail = ", ".join(f"{mode}: {n}" for mode, n in sorted(not_chat.items()))
        warnings.insert(0, f"skipped {sum(not_chat.values())} non-chat entries ({detail})")
    return list(entries.values()), warnings


def _entry(key: str, raw: dict[str, Any], source: str) -> ModelInfo:
    litellm_provider = raw.get("litellm_provider")
    if not isinstance(litellm_provider, str) or not litellm_provider:
        raise _Skip("no litellm_provider")
    provider = PROVIDER_IDS.get(litellm_provider, litellm_provider)
    prefix = f"{litellm_provider}/"
    model = key[len(prefix):] if key.startswith(prefix) else key
    inp = _per_million(raw, "input_cost_per_token")
    cache_write = _per_million(raw, "cache_creation_input_token_cost", default=inp)
    if cache_write == 0 and inp > 0:
        # LiteLLM writes 0.0 where a vendor has no separate cache-write price; pricing written
        # tokens at zero would under-count, so they fall back to the input price
        cache_write = inp
    context, max_output = _limits(raw)
    return ModelInfo(
        provider=provider,
        model=model,
        price=Price(
            input=inp,
            output=_per_million(raw, "output_cost_per_token"),
            cached_input=_per_million(raw, "cache_read_input_token_cost", default=inp),
            cache_write=cache_write,
        ),
        context_window=context,
        max_output=max_output,
        capabilities=_capabilities(raw),
        source=f"{source}, key '{key}'",
    )


def _per_million(raw: dict[str, Any], field: str, default: Decimal | None = None) -> Decimal:
    value = raw.get(field)
    if value is None:
        if default is None:
            raise _Skip(f"no {field}")
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Skip(f"{field} is not a number ({value!r})")
    try:
        per_token = Decimal(str(value))
    except InvalidOperation:
        raise _Skip(f"{field} is not a number ({value!r})") from None
    if not per_token.is_finite() or per_token < 0:
        raise _Skip(f"{field} is negative or not finite ({value!r})")
    return _plain(per_token * _MILLION)


def _plain(amount: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent form (10, not 1E+1)."""
    return Decimal(format(amount.normalize(), "f"))


def _limits(raw: dict[str, Any]) -> tuple[int, int]:
    context = _tokens(raw.get("max_input_tokens")) or _tokens(raw.get("max_tokens"))
    if context is None:
        raise _Skip("no max_input_tokens or max_tokens")
    max_output = _tokens(raw.get("max_output_tokens")) or _tokens(raw.get("max_tokens")) or context
    # some LiteLLM entries list an output cap above the input limit; the catalog requires
    # max_output <= context_window, so the smaller, safer number wins
    return context, min(max_output, context)


def _tokens(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _capabilities(raw: dict[str, Any]) -> frozenset[str]:
    caps = {cap for flag, cap in _CAPABILITY_FLAGS.items() if raw.get(flag) is True}
    # LiteLLM has no general streaming flag; every chat endpoint of the vendors it maps
    # streams, so streaming is assumed unless an entry says otherwise
    if raw.get("supports_native_streaming") is not False:
        caps.add("streaming")
    return frozenset(caps)
