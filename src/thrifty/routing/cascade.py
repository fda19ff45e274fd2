"""The cascade policy: ordered tiers, cheap first. The plan says which models each tier
calls and which checks its answer must pass; the engine (``engine/cascade.py``) calls them,
runs the checks and escalates. Tiers whose models cannot serve the request are skipped
(a vision request skips text-only tiers); the last remaining tier answers unconditionally.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from thrifty.errors import InvalidRequest
from thrifty.routing.estimate import Constraints, exclusion, expected_cost_usd
from thrifty.routing.policy import Candidate, Plan, RouteContext, Tier


@dataclass(frozen=True, slots=True)
class Cascade:
    tiers: tuple[Tier, ...]
    constraints: Constraints = field(default_factory=Constraints)
    name: str = "cascade"

    def plan(self, ctx: RouteContext) -> Plan:
        kept: list[Tier] = []
        seen: list[Candidate] = []
        for tier in self.tiers:
            ok = []
            for t in tier.targets:
                cost = expected_cost_usd(t, ctx.features, ctx.stats.get(t.key))
                why = exclusion(t, ctx.features, self.constraints,
                                max_cost_usd=ctx.options.max_cost_usd, cost=cost)
                seen.append(Candidate(t.model, t.provider, cost, excluded=why))
                if why is None:
                    ok.append(t)
            if ok:
                kept.append(Tier(tuple(ok), tier.checks))
        if not kept:
            detail = "; ".join(f"{c.model}: {c.excluded}" for c in seen if c.excluded)
            raise InvalidRequest(f"no cascade tier can serve the request ({detail})",
                                 param="model", code="no_eligible_model")
        last = kept[-1]
        kept[-1] = Tier(last.targets, ())  # the final tier's answer is the answer
        reason = " -> ".join("+".join(t.model for t in tier.targets) for tier in kept)
        return Plan(self.name, "cascade", tuple(kept), tuple(seen), f"tiers {reason}")
