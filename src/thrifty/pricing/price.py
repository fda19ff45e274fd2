"""A model's price card and what it knows about the model, as immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

CAPABILITIES = frozenset({"tools", "vision", "json_schema", "streaming", "reasoning"})


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. ``cached_input`` is the prompt-cache read price and
    ``cache_write`` the prompt-cache write price; both default to ``input`` when a vendor
    has no separate price."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal

    @classmethod
    def of(
        cls,
        input: Decimal | str | float,
        output: Decimal | str | float,
        cached_input: Decimal | str | float | None = None,
        cache_write: Decimal | str | float | None = None,
    ) -> Price:
        inp = Decimal(str(input))
        return cls(
            input=inp,
            output=Decimal(str(output)),
            cached_input=inp if cached_input is None else Decimal(str(cached_input)),
            cache_write=inp if cache_write is None else Decimal(str(cache_write)),
        )

    @classmethod
    def free(cls) -> Price:
        zero = Decimal(0)
        return cls(zero, zero, zero, zero)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    provider: str
    """Catalog provider id (openai, anthropic, gemini, deepseek, ...)."""
    model: str
    """The vendor's model id."""
    price: Price
    context_window: int
    max_output: int
    capabilities: frozenset[str] = field(default_factory=frozenset)
    source: str = ""

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"
