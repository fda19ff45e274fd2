"""Demotion: take deployments an operator has been warned about (an open drift alert) out
of a plan, unless nothing else could serve. Pure: a plan and the demoted deployment keys
in, a plan out, with the demotion written into its candidates and reason (the ledger's
route trace).

A fallback plan loses the demoted targets; if every target is demoted it is kept whole.
A cascade's early tiers lose theirs (an emptied early tier is skipped: the request goes
to the next tier); its final tier, the quality guarantee, is kept whole if emptied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from thrifty.routing.policy import Candidate, Plan, Tier


def demote(plan: Plan, demoted: Mapping[str, str]) -> Plan:
    """``plan`` without the targets whose key is in ``demoted`` (key -> alert id)."""
    if not demoted or not any(t.key in demoted for t in plan.tiers_targets()):
        return plan
    last = len(plan.tiers) - 1
    tiers: list[Tier] = []
    for i, tier in enumerate(plan.tiers):
        kept = tuple(t for t in tier.targets if t.key not in demoted)
        if kept:
            tiers.append(replace(tier, targets=kept) if len(kept) < len(tier.targets)
                         else tier)
        elif plan.mode == "cascade" and i == last:
            tiers.append(tier)
    hit = {t.key: t for t in plan.tiers_targets() if t.key in demoted}
    note = ", ".join(f"{k} (drift alert {demoted[k]})" for k in hit)
    if not tiers or tuple(tiers) == plan.tiers:
        return replace(plan, reason=f"{plan.reason}; demoted but nothing else can serve: "
                                    f"{note}")
    left = {t.key for tier in tiers for t in tier.targets}
    gone = {(t.model, t.provider): demoted[k] for k, t in hit.items() if k not in left}
    return replace(plan, tiers=tuple(tiers), reason=f"{plan.reason}; demoted: {note}",
                   candidates=tuple(_mark(c, gone) for c in plan.candidates))


def _mark(c: Candidate, names: Mapping[tuple[str, str], str]) -> Candidate:
    alert = names.get((c.model, c.provider))
    if alert is None or c.excluded is not None:
        return c
    return replace(c, excluded=f"demoted: drift alert {alert}")
