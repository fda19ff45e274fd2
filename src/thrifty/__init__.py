"""thrifty: an OpenAI-compatible LLM gateway that pays for intelligence only when needed.

``import thrifty`` is cheap: it creates no client and reads no key; ``thrifty.Gateway`` is
loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Gateway", "__version__"]

if TYPE_CHECKING:
    from thrifty.engine.gateway import Gateway


def __getattr__(name: str) -> Any:
    if name == "Gateway":
        from thrifty.engine.gateway import Gateway

        return Gateway
    raise AttributeError(f"module 'thrifty' has no attribute {name!r}")
