"""Wire name -> adapter. Adapters for other wires are imported on first use only."""

from __future__ import annotations

import importlib

from thrifty.errors import ConfigError
from thrifty.providers.base import WireAdapter

_ADAPTERS: dict[str, tuple[str, str]] = {
    "openai": ("thrifty.providers.openai_compat", "OpenAIAdapter"),
    "anthropic": ("thrifty.providers.anthropic", "AnthropicAdapter"),
    "gemini": ("thrifty.providers.gemini", "GeminiAdapter"),
}
_cache: dict[str, WireAdapter] = {}


def adapter_for(wire: str) -> WireAdapter:
    adapter = _cache.get(wire)
    if adapter is None:
        if wire not in _ADAPTERS:
            raise ConfigError(f"no adapter for wire {wire!r}; known: {', '.join(_ADAPTERS)}")
        module, cls = _ADAPTERS[wire]
        adapter = getattr(importlib.import_module(module), cls)()
        _cache[wire] = adapter
    return adapter


def wires() -> list[str]:
    return list(_ADAPTERS)
