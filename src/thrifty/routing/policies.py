"""The ranking policies: each orders one route's targets and hands back a fallback plan.

    fallback        the configured order
    weighted        a weighted random order (seeded rng: reproducible in tests and replay)
    least-latency   lowest EWMA latency first; targets with no history first (to learn them)
    least-busy      fewest requests in flight first
    lowest-cost     cheapest expected dollars first
    effective-cost  expected dollars + a price on latency beyond the budget + the expected
                    cost of retries and parse failures (the seed's point: a slower cheap
                    model can cost more once user abandonment is priced in)

Targets that cannot serve the request (capabilities, context window, provider or region
constraints, the request's cost cap) are excluded and listed with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from thrifty.errors import InvalidRequest
from thrifty.providers.base import Target
from thrifty.routing.estimate import (
    Constraints,
    exclusion,
    expected_cost_usd,
    expected_latency_ms,
)
from thrifty.routing.policy import Candidate, Plan, RouteContext, single_tiers
from thrifty.routing.stats import ModelStats

Score = Callable[[Target, Candidate, ModelStats], float]


def rank(
    ctx: RouteContext,
    policy: str,
    targets: Sequence[Target],
    constraints: Constraints,
    score: Score | None,
    reason: str,
) -> Plan:
    """Exclude what cannot serve, score the rest (lower is better, stable), plan."""
    kept: list[tuple[float, int, Target, Candidate]] = []
    rejected: list[Candidate] = []
    features, max_cost, stats = ctx.features, ctx.options.max_cost_usd, ctx.stats
    for i, t in enumerate(targets):
        s = stats.get(t.key)
        cost = expected_cost_usd(t, features, s)
        latency = expected_latency_ms(s)
        why = exclusion(t, features, constraints, max_cost_usd=max_cost, cost=cost)
        if why is not None:
            rejected.append(Candidate(t.model, t.provider, cost, latency, excluded=why))
            continue
        if score is None:
            value = float(i)
        else:  # scores read the expectations from a candidate without a score yet
            value = score(t, Candidate(t.model, t.provider, cost, latency), s)
        kept.append((value, i, t, Candidate(t.model, t.provider, cost, latency, value)))
    if not kept:
        detail = "; ".join(f"{c.model}: {c.excluded}" for c in rejected)
        raise InvalidRequest(
            f"no model on this route can serve the request ({detail})", param="model",
            code="no_eligible_model")
    kept.sort(key=lambda k: (k[0], k[1]))
    return Plan(policy, "fallback", single_tiers([k[2] for k in kept]),
                tuple(k[3] for k in kept) + tuple(rejected), reason)


@dataclass(frozen=True, slots=True)
class Direct:
    """A plain model name: the client chose the model, so nothing is excluded; parameters
    the model lacks are mapped or dropped by its adapter (json_schema -> json_object)."""

    target: Target
    name: str = "direct"

    def plan(self, ctx: RouteContext) -> Plan:
        t = self.target
        cost = expected_cost_usd(t, ctx.features, ctx.stats.get(t.key))
        return Plan(self.name, "fallback", single_tiers([t]),
                    (Candidate(t.model, t.provider, cost),), "the model named in the request")


@dataclass(frozen=True, slots=True)
class Deployments:
    """A logical model served by several deployments: a weighted random order (seeded rng),
    nothing excluded (the client named the model). Health-aware skipping of deployments
    whose breaker is open happens when the plan is executed."""

    targets: tuple[Target, ...]
    name: str = "deployments"

    def plan(self, ctx: RouteContext) -> Plan:
        keys = {t.key: -math.log(1.0 - ctx.rng.random()) / t.weight for t in self.targets}
        ordered = sorted(self.targets, key=lambda t: keys[t.key])
        cands = tuple(Candidate(t.model, t.provider, expected_cost_usd(
            t, ctx.features, ctx.stats.get(t.key)), score=keys[t.key]) for t in ordered)
        return Plan(self.name, "fallback", single_tiers(ordered), cands,
                    "weighted order over the model's deployments")


@dataclass(frozen=True, slots=True)
class Fallback:
    targets: tuple[Target, ...]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "fallback"

    def plan(self, ctx: RouteContext) -> Plan:
        return rank(ctx, self.name, self.targets, self.constraints, None, "configured order")


@dataclass(frozen=True, slots=True)
class Weighted:
    targets: tuple[Target, ...]
    weights: Mapping[str, float]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "weighted"

    def plan(self, ctx: RouteContext) -> Plan:
        # Efraimidis-Spirakis: key u^(1/w) sorted descending is a weighted order without
        # replacement; we minimise, so use -log(u)/w.
        keys = {t.model: -math.log(1.0 - ctx.rng.random()) / max(self.weights.get(t.model, 1.0),
                                                                  1e-9)
                for t in self.targets}
        return rank(ctx, self.name, self.targets, self.constraints,
                    lambda t, c, s: keys[t.model], "weighted random order")


@dataclass(frozen=True, slots=True)
class LeastLatency:
    targets: tuple[Target, ...]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "least-latency"

    def plan(self, ctx: RouteContext) -> Plan:
        def score(t: Target, c: Candidate, s: ModelStats) -> float:
            if s.latency_ms is None:
                return -1.0  # never measured: try it so it gets measured
            return s.latency_ms + (s.ttft_ms or 0.0)

        return rank(ctx, self.name, self.targets, self.constraints, score,
                    "lowest EWMA latency + time to first token")


@dataclass(frozen=True, slots=True)
class LeastBusy:
    targets: tuple[Target, ...]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "least-busy"

    def plan(self, ctx: RouteContext) -> Plan:
        return rank(ctx, self.name, self.targets, self.constraints,
                    lambda t, c, s: float(s.in_flight), "fewest requests in flight")


@dataclass(frozen=True, slots=True)
class LowestCost:
    targets: tuple[Target, ...]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "lowest-cost"

    def plan(self, ctx: RouteContext) -> Plan:
        return rank(ctx, self.name, self.targets, self.constraints,
                    lambda t, c, s: c.expected_cost_usd or 0.0, "cheapest expected dollars")


@dataclass(frozen=True, slots=True)
class EffectiveCost:
    targets: tuple[Target, ...]
    latency_budget_ms: float | None = None
    latency_price_usd_per_s: float = 0.0
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "effective-cost"

    def plan(self, ctx: RouteContext) -> Plan:
        budget = ctx.options.latency_budget_ms or self.latency_budget_ms
        price = self.latency_price_usd_per_s

        def score(t: Target, c: Candidate, s: ModelStats) -> float:
            return effective_cost(c.expected_cost_usd or 0.0, s, budget, price)

        return rank(ctx, self.name, self.targets, self.constraints, score,
                    f"dollars + ${price}/s beyond {budget or 'no'} ms budget + retry/parse risk")


def effective_cost(cost: float, s: ModelStats, budget_ms: float | None,
                   price_per_s: float) -> float:
    """Expected dollars of serving on a target, all in: a failed call is retried (paying
    again with probability error_rate), an unparseable answer is asked again (paying again
    with probability parse_failure_rate), and each second past the budget costs
    ``price_per_s`` (what an abandoned or slowed user is worth to the caller)."""
    retry = cost * min(s.error_rate + s.parse_failure_rate, 0.95) / (
        1.0 - min(s.error_rate + s.parse_failure_rate, 0.95))
    late = 0.0
    if budget_ms is not None and s.latency_ms is not None:
        late = max(0.0, s.latency_ms - budget_ms) / 1000.0 * price_per_s
    return cost + retry + late
