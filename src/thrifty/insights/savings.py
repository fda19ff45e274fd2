"""Savings: what the answered traffic would have cost on one baseline model, against what it
cost. Pure arithmetic over ``DeploymentStats`` and catalog prices, in Decimal.

The baseline bill of a request is one call to the baseline model with the tokens of the call
that answered it (for a request made in one call, its recorded tokens): the cheaper cascade
tiers and failed attempts before the answer are the routing's own cost, paid on top.
Requests that got no answer are left out of both sides and shown on their own.

Split: ``routing`` is the requests a cheaper (or other) model answered; ``baseline`` is the
requests the baseline model answered itself, whose extra calls make them cost more than one
baseline call. Caching and the batch tier are reported as not enabled (no such tier records
anything in the ledger yet): no number is made up for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from thrifty.insights.queries import DeploymentStats, Tokens
from thrifty.pricing.cost import to_nano_usd
from thrifty.pricing.price import Price

_MILLION = Decimal(1_000_000)
NOT_ENABLED = "not enabled: the gateway has no response cache or batch tier yet"


def tokens_cost_nano(tokens: Tokens, price: Price) -> int:
    """``compute_cost`` over summed tokens (it is linear, so sums price exactly)."""
    cached = min(tokens.cached, tokens.input)
    written = min(tokens.cache_write, tokens.input - cached)
    fresh = tokens.input - cached - written
    usd = (fresh * price.input + cached * price.cached_input + written * price.cache_write
           + tokens.output * price.output) / _MILLION
    return to_nano_usd(usd)


@dataclass(frozen=True, slots=True)
class SavingsLine:
    label: str
    requests: int
    baseline_nano: int
    actual_nano: int

    @property
    def saved_nano(self) -> int:
        return self.baseline_nano - self.actual_nano


@dataclass(frozen=True, slots=True)
class Savings:
    baseline: str
    """``provider/model`` priced as the baseline."""
    total: SavingsLine
    routing: SavingsLine
    by_baseline: SavingsLine
    per_model: tuple[SavingsLine, ...]
    failed_cost_nano: int
    """Spent on requests that got no answer (not in either side above)."""
    caching: str = NOT_ENABLED
    batch: str = NOT_ENABLED

    @property
    def saved_share(self) -> float:
        """The part of the baseline bill saved (0 when there is none)."""
        b = self.total.baseline_nano
        return self.total.saved_nano / b if b else 0.0


def savings(stats: Sequence[DeploymentStats], baseline: str, price: Price) -> Savings:
    """Savings of the answered requests in ``stats`` against ``baseline`` at ``price``."""
    per_model: list[SavingsLine] = []
    for s in stats:
        answered = s.requests - s.errors
        if not s.model or answered <= 0:
            continue
        per_model.append(SavingsLine(s.key, answered, tokens_cost_nano(s.answer_tokens, price),
                                     s.answered_cost_nano))
    per_model.sort(key=lambda line: line.saved_nano, reverse=True)
    routing = _sum("answered by other models", (x for x in per_model if x.label != baseline))
    own = _sum(f"answered by {baseline}", (x for x in per_model if x.label == baseline))
    total = _sum("all answered requests", per_model)
    failed = sum(s.cost_nano - s.answered_cost_nano for s in stats)
    return Savings(baseline, total, routing, own, tuple(per_model), failed)


def _sum(label: str, lines: Iterable[SavingsLine]) -> SavingsLine:
    items = list(lines)
    return SavingsLine(label, sum(x.requests for x in items),
                       sum(x.baseline_nano for x in items), sum(x.actual_nano for x in items))


def default_baseline(stats: Sequence[DeploymentStats], prices: Mapping[str, Price]
                     ) -> str | None:
    """The priciest deployment that answered traffic in the window (the premium model the
    routes escalate to), by input + output price; None when none is priced."""
    served = [s.key for s in stats if s.model and s.requests > s.errors and s.key in prices]
    if not served:
        return None
    return max(served, key=lambda k: (prices[k].input + prices[k].output, k))
