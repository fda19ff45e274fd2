"""Cost is a pure function of reported usage and a price card, in Decimal."""

from __future__ import annotations

from decimal import Decimal

from thrifty.core.usage import Usage
from thrifty.pricing.price import Price

_MILLION = Decimal(1_000_000)
NANO = Decimal("0.000000001")


def compute_cost(usage: Usage, price: Price) -> Decimal:
    """USD for one call. Cached reads and cache writes are carved out of ``input_tokens``
    and priced at their own rates; reasoning tokens are already inside ``output_tokens``."""
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    fresh = usage.input_tokens - cached - written
    total = (
        fresh * price.input
        + cached * price.cached_input
        + written * price.cache_write
        + usage.output_tokens * price.output
    )
    return total / _MILLION


def to_nano_usd(cost: Decimal) -> int:
    """Integer nano-dollars for storage, rounded half-up. Micro-dollars would round a
    20-token call on a cheap model to zero; nano keeps it and still sums exactly in int64."""
    return int((cost / NANO).to_integral_value(rounding="ROUND_HALF_UP"))


def from_nano_usd(nano: int) -> Decimal:
    return Decimal(nano) * NANO


def format_usd(cost: Decimal) -> str:
    """A fixed-point string for headers and JSON (no exponent, 10 decimals at most)."""
    return f"{cost.quantize(Decimal('1e-10')).normalize():f}"
