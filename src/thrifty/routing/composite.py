"""Policies built from other policies: ``rules`` picks a route or a policy per request from
declarative conditions; ``learned`` ranks a route's models by a trained quality predictor.
Both stay pure: the rule set and the router are loaded once, at configuration time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from thrifty.errors import InvalidRequest
from thrifty.providers.base import Target
from thrifty.routing.estimate import Constraints, exclusion, expected_cost_usd
from thrifty.routing.policy import Candidate, Plan, Policy, Resolver, RouteContext, single_tiers
from thrifty.routing.rules import RuleSet

if TYPE_CHECKING:
    from thrifty.routing.learned.router import LearnedRouter


@dataclass(frozen=True, slots=True)
class Rules:
    rules: RuleSet
    per_rule: Mapping[int, Policy]
    """Policies over a rule's model set, built at configuration time."""
    resolver: Resolver
    route_name: str
    name: str = "rules"

    def plan(self, ctx: RouteContext) -> Plan:
        if self.rules.needs_language and ctx.features.language is None:
            ctx = ctx.with_features(ctx.features.with_language())
        match = self.rules.match(ctx.features)
        if match is None:
            raise InvalidRequest(f"no rule of route {self.route_name} matched the request and "
                                 "it has no default", param="model", code="no_matching_rule")
        label = f"rules:{self.route_name}#{match.index}" + (f"({match.name})" if match.name
                                                              else "")
        if match.route is not None:
            inner = self.resolver.policy_for(match.route).plan(ctx)
            return replace(inner, via=(label, match.route, *inner.via))
        inner = self.per_rule[match.index].plan(ctx)
        return replace(inner, via=(label, *inner.via))


@dataclass(frozen=True, slots=True)
class Learned:
    router: LearnedRouter
    targets: tuple[Target, ...]
    quality_floor: float | None = None
    lam: float | None = None
    threshold: float | None = None
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "learned"

    def plan(self, ctx: RouteContext) -> Plan:
        eligible: dict[str, Target] = {}
        costs: dict[str, float] = {}
        rejected: list[Candidate] = []
        for t in self.targets:
            cost = expected_cost_usd(t, ctx.features, ctx.stats.get(t.key))
            why = exclusion(t, ctx.features, self.constraints,
                            max_cost_usd=ctx.options.max_cost_usd, cost=cost)
            if why is None:
                eligible[t.model] = t
                costs[t.model] = cost
            else:
                rejected.append(Candidate(t.model, t.provider, cost, excluded=why))
        if not eligible:
            raise InvalidRequest("no model of the learned route can serve the request",
                                 param="model", code="no_eligible_model")
        try:
            choice = self.router.choose(ctx.features.last_user_text, costs,
                                        **self._mode(ctx.options.quality_floor))
        except ValueError as exc:  # e.g. neither model of a strong/weak pair is eligible
            raise InvalidRequest(f"the learned route cannot choose: {exc}", param="model",
                                 code="no_eligible_model") from None
        order = [choice.model, *sorted((m for m in eligible if m != choice.model),
                                       key=lambda m: costs[m])]
        cands = tuple(Candidate(m, eligible[m].provider, costs[m],
                                score=choice.predicted.get(m)) for m in order)
        return Plan(self.name, "fallback", single_tiers([eligible[m] for m in order]),
                    cands + tuple(rejected), choice.reason, router=self.router,
                    prompt=ctx.features.last_user_text)


    def _mode(self, request_floor: float | None) -> dict[str, float]:
        """One decision mode: the request's floor, else the route's configured mode, else
        (nothing) the router's own calibrated default."""
        if request_floor is not None:
            return {"quality_floor": request_floor}
        for key, value in (("quality_floor", self.quality_floor), ("threshold", self.threshold),
                           ("lam", self.lam)):
            if value is not None:
                return {key: value}
        return {}


def targets_for(names: Sequence[str], table: Mapping[str, Target], where: str) -> tuple[Target,
                                                                                         ...]:
    from thrifty.errors import ConfigError

    missing = [n for n in names if n not in table]
    if missing:
        raise ConfigError(f"{where}: unknown model(s) {', '.join(missing)}; each must be a "
                          "model this gateway serves (see GET /v1/models)")
    return tuple(table[n] for n in names)
