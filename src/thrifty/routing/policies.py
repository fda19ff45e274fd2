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

Planning runs on every request, so ranking reads only the request's size (not its full
features), with what does not change between requests prepared once per policy
(:class:`Ranker`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from thrifty.errors import InvalidRequest
from thrifty.providers.base import Target
from thrifty.routing.estimate import (
    DEFAULT_OUTPUT_TOKENS,
    MILLION,
    Constraints,
    exclusion,
    size_cost_usd,
)
from thrifty.routing.policy import Candidate, Plan, RouteContext, Tier, single_tiers
from thrifty.routing.stats import ModelStats

Score = Callable[[Target, float, ModelStats], float]
"""A target's rank value (lower first) from the target, its expected dollars and stats."""


class Ranker:
    """What :func:`rank` reads of a route's targets, prepared once per policy: stats keys,
    prices as floats, one tier per target, and which targets pass the static constraints
    for each set of needs."""

    __slots__ = ("_fits", "constraints", "keys", "prices", "targets", "tiers")

    def __init__(self, targets: tuple[Target, ...], constraints: Constraints) -> None:
        self.targets = targets
        self.constraints = constraints
        self.keys = tuple(t.key for t in targets)
        self.prices = tuple((float(t.info.price.input), float(t.info.price.output),
                             t.info.max_output, t.info.context_window) for t in targets)
        self.tiers = single_tiers(targets)
        self._fits: dict[frozenset[str], tuple[bool, ...]] = {}

    def fits(self, needs: frozenset[str]) -> tuple[bool, ...]:
        """Per target: has every capability needed, and an allowed provider and region
        (the checks of ``exclusion`` that do not depend on the request's size or cost)."""
        hit = self._fits.get(needs)
        if hit is None:
            c, every = self.constraints, needs | self.constraints.require
            hit = self._fits[needs] = tuple(
                not (every - t.info.capabilities)
                and (c.providers is None or t.provider in c.providers)
                and (c.regions is None or (t.region is not None and t.region in c.regions))
                for t in self.targets)
        return hit


def rank(ctx: RouteContext, policy: str, ranker: Ranker, score: Score | None,
         reason: str) -> Plan:
    """Exclude what cannot serve, score the rest (lower is better, stable), plan."""
    stats = list(map(ctx.stats.get, ranker.keys))
    max_cost = ctx.options.max_cost_usd
    n_in, max_out, needs = ctx.size()
    needed = n_in + (max_out or 0)
    fits = ranker.fits(needs)
    targets = ranker.targets
    kept: list[tuple[float, int, Candidate]] = []
    rejected: list[Candidate] = []
    for i, (p_in, p_out, t_max, window) in enumerate(ranker.prices):
        s, t = stats[i], targets[i]
        # expected_cost_usd's arithmetic, with the prices read once per policy
        guess = s.output_tokens if s.output_tokens is not None else DEFAULT_OUTPUT_TOKENS
        cost = (n_in * p_in + min(guess, float(min(max_out or t_max, t_max))) * p_out) / MILLION
        if not fits[i] or needed > window or (max_cost is not None and cost > max_cost):
            # the exact reason, worded by ``exclusion``, only when a cheap check failed
            why = exclusion(t, ctx.features, ranker.constraints, max_cost_usd=max_cost,
                            cost=cost)
            if why is not None:
                rejected.append(Candidate(t.model, t.provider, cost, s.latency_ms, None, why))
                continue
        value = float(i) if score is None else score(t, cost, s)
        kept.append((value, i, Candidate(t.model, t.provider, cost, s.latency_ms, value)))
    if not kept:
        detail = "; ".join(f"{c.model}: {c.excluded}" for c in rejected)
        raise InvalidRequest(
            f"no model on this route can serve the request ({detail})", param="model",
            code="no_eligible_model")
    kept.sort(key=_score_then_order)
    return Plan(policy, "fallback", tuple(ranker.tiers[i] for _, i, _ in kept),
                (*(c for _, _, c in kept), *rejected), reason)


def _score_then_order(k: tuple[float, int, Candidate]) -> tuple[float, int]:
    return k[0], k[1]


class Ranked:
    """Base of the ranking policies: prepares their :class:`Ranker` once."""

    __slots__ = ()
    targets: tuple[Target, ...]
    constraints: Constraints
    _ranker: Ranker

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ranker", Ranker(self.targets, self.constraints))


@dataclass(frozen=True, slots=True)
class Direct:
    """A plain model name: the client chose the model, so nothing is excluded; parameters
    the model lacks are mapped or dropped by its adapter (json_schema -> json_object)."""

    target: Target
    name: str = "direct"

    _tiers: tuple[Tier, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tiers", single_tiers([self.target]))

    def plan(self, ctx: RouteContext) -> Plan:
        t = self.target
        n_in, max_out, _ = ctx.size()
        cost = size_cost_usd(t, n_in, max_out, ctx.stats.get(t.key))
        return Plan(self.name, "fallback", self._tiers,
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
        n_in, max_out, _ = ctx.size()
        cands = tuple(Candidate(t.model, t.provider, size_cost_usd(
            t, n_in, max_out, ctx.stats.get(t.key)), score=keys[t.key]) for t in ordered)
        return Plan(self.name, "fallback", single_tiers(ordered), cands,
                    "weighted order over the model's deployments")


@dataclass(frozen=True, slots=True)
class Fallback(Ranked):
    targets: tuple[Target, ...]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "fallback"

    _ranker: Ranker = field(init=False, repr=False, compare=False)

    def plan(self, ctx: RouteContext) -> Plan:
        return rank(ctx, self.name, self._ranker, None, "configured order")


@dataclass(frozen=True, slots=True)
class Weighted(Ranked):
    targets: tuple[Target, ...]
    weights: Mapping[str, float]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "weighted"

    _ranker: Ranker = field(init=False, repr=False, compare=False)

    def plan(self, ctx: RouteContext) -> Plan:
        # Efraimidis-Spirakis: key u^(1/w) sorted descending is a weighted order without
        # replacement; we minimise, so use -log(u)/w.
        keys = {t.model: -math.log(1.0 - ctx.rng.random()) / max(self.weights.get(t.model, 1.0),
                                                                  1e-9)
                for t in self.targets}
        return rank(ctx, self.name, self._ranker,
                    lambda t, c, s: keys[t.model], "weighted random order")


@dataclass(frozen=True, slots=True)
class LeastLatency(Ranked):
    targets: tuple[Target, ...]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "least-latency"

    _ranker: Ranker = field(init=False, repr=False, compare=False)

    def plan(self, ctx: RouteContext) -> Plan:
        def score(t: Target, c: float, s: ModelStats) -> float:
            if s.latency_ms is None:
                return -1.0  # never measured: try it so it gets measured
            return s.latency_ms + (s.ttft_ms or 0.0)

        return rank(ctx, self.name, self._ranker, score,
                    "lowest EWMA latency + time to first token")


@dataclass(frozen=True, slots=True)
class LeastBusy(Ranked):
    targets: tuple[Target, ...]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "least-busy"

    _ranker: Ranker = field(init=False, repr=False, compare=False)

    def plan(self, ctx: RouteContext) -> Plan:
        return rank(ctx, self.name, self._ranker,
                    lambda t, c, s: float(s.in_flight), "fewest requests in flight")


@dataclass(frozen=True, slots=True)
class LowestCost(Ranked):
    targets: tuple[Target, ...]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "lowest-cost"

    _ranker: Ranker = field(init=False, repr=False, compare=False)

    def plan(self, ctx: RouteContext) -> Plan:
        return rank(ctx, self.name, self._ranker,
                    lambda t, c, s: c or 0.0, "cheapest expected dollars")


@dataclass(frozen=True, slots=True)
class EffectiveCost(Ranked):
    targets: tuple[Target, ...]
    latency_budget_ms: float | None = None
    latency_price_usd_per_s: float = 0.0
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "effective-cost"

    _ranker: Ranker = field(init=False, repr=False, compare=False)

    def plan(self, ctx: RouteContext) -> Plan:
        budget = ctx.options.latency_budget_ms or self.latency_budget_ms
        price = self.latency_price_usd_per_s

        def score(t: Target, c: float, s: ModelStats) -> float:
            return effective_cost(c or 0.0, s, budget, price)

        return rank(ctx, self.name, self._ranker, score,
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
