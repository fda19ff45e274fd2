"""The cascade policy: ordered tiers, cheap first. The plan says which models each tier
calls and which checks its answer must pass; the engine (``engine/cascade.py``) calls them,
runs the checks and escalates. Tiers whose models cannot serve the request are skipped
(a vision request skips text-only tiers); the last remaining tier answers unconditionally.
A final tier with a ``max_answer_usd`` rescue budget is skipped when the earlier answers say
its answer would cost more (:func:`rescue_answer_usd`); an earlier answer is returned
instead. On the math/code rows the escalations whose cheap answers ran long were both the
dearest and the least often rescued.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from thrifty.core.usage import Usage
from thrifty.errors import InvalidRequest
from thrifty.providers.base import Target
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
                kept.append(replace(tier, targets=tuple(ok)))
        if not kept:
            detail = "; ".join(f"{c.model}: {c.excluded}" for c in seen if c.excluded)
            raise InvalidRequest(f"no cascade tier can serve the request ({detail})",
                                 param="model", code="no_eligible_model")
        last = kept[-1]
        kept[-1] = replace(last, checks=())  # the final tier's answer is the answer
        reason = " -> ".join("+".join(t.model for t in tier.targets) for tier in kept)
        return Plan(self.name, "cascade", tuple(kept), tuple(seen), f"tiers {reason}")


def rescue_answer_usd(final: Target, usages: Sequence[Usage]) -> float | None:
    """What the final tier's answer is expected to cost: the earlier answers' median length
    at its output price (a problem that makes cheap models write long makes the strong one
    write long too). The prompt is left out, so a long context alone never blocks a rescue.
    None when no earlier call reported usage."""
    if not usages:
        return None
    output = statistics.median(u.output_tokens for u in usages)
    return float(Decimal(str(output)) * final.info.price.output) / 1e6


def fallback_index(early: Sequence[Tier], models: Sequence[str]) -> int:
    """Which of the earlier ``models`` (answers in call order) the cascade returns when its
    final tier is over budget: the first from a tier marked ``fallback``, else the latest."""
    marked = {t.model for tier in early if tier.fallback for t in tier.targets}
    return next((i for i, m in enumerate(models) if m in marked), len(models) - 1)
