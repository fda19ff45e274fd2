"""What a request is expected to cost and take on a target, and whether a target may serve
it at all (capabilities, context window, allowed providers and regions, a cost cap).
Pure functions over the request's features, the target's catalog entry and live stats."""

from __future__ import annotations

from dataclasses import dataclass

from thrifty.providers.base import Target
from thrifty.routing.features import RequestFeatures
from thrifty.routing.stats import ModelStats

DEFAULT_OUTPUT_TOKENS = 300
"""Output length assumed for a model with no history and a request with no max_tokens."""
MILLION = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Constraints:
    providers: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    require: frozenset[str] = frozenset()


def expected_output_tokens(target: Target, f: RequestFeatures, s: ModelStats) -> float:
    return _output_tokens(target, f.max_output_tokens, s)


def _output_tokens(target: Target, max_output_tokens: int | None, s: ModelStats) -> float:
    guess = s.output_tokens if s.output_tokens is not None else DEFAULT_OUTPUT_TOKENS
    cap = min(max_output_tokens or target.info.max_output, target.info.max_output)
    return min(guess, float(cap))


def expected_cost_usd(target: Target, f: RequestFeatures, s: ModelStats) -> float:
    return size_cost_usd(target, f.estimated_input_tokens, f.max_output_tokens, s)


def size_cost_usd(target: Target, input_tokens: int, max_output_tokens: int | None,
                  s: ModelStats) -> float:
    """``expected_cost_usd`` from the request's size alone (``RequestFeatures.size``).
    ``policies.rank`` repeats this arithmetic with the prices read once."""
    p = target.info.price
    out = _output_tokens(target, max_output_tokens, s)
    return (input_tokens * float(p.input) + out * float(p.output)) / MILLION


def expected_latency_ms(s: ModelStats) -> float | None:
    return s.latency_ms


def exclusion(
    target: Target,
    f: RequestFeatures,
    c: Constraints,
    *,
    max_cost_usd: float | None = None,
    cost: float | None = None,
) -> str | None:
    """Why ``target`` may not serve this request, or None when it may."""
    missing = (f.required_capabilities() | c.require) - target.info.capabilities
    if missing:
        return f"lacks {', '.join(sorted(missing))}"
    needed = f.estimated_input_tokens + (f.max_output_tokens or 0)
    if needed > target.info.context_window:
        return f"context {target.info.context_window} < {needed} tokens"
    if c.providers is not None and target.provider not in c.providers:
        return f"provider {target.provider} not allowed"
    if c.regions is not None and (target.region is None or target.region not in c.regions):
        return f"region {target.region or 'unknown'} not allowed"
    if max_cost_usd is not None and cost is not None and cost > max_cost_usd:
        return f"expected ${cost:.6f} > max ${max_cost_usd:.6f}"
    return None
