"""Pure limit arithmetic: what a request wants from each limit, whether a reservation fits,
and what it really used. Every counter back end decides with ``decide`` so they agree exactly.

No I/O, no clock: counts and ``now`` are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

from thrifty.core.usage import Usage
from thrifty.limits.model import Hold, Limit, Refusal, ReserveResult, Resource, window_bounds


class MergedWants(list[tuple[Limit, int]]):
    """Wants known to be merged already (one per limit id, no amount below 0), which
    ``merge_wants`` passes through as they are: the gateway knows its limits' ids are
    distinct once per cached scope, and merging again costs every request."""


def wants_for(
    limits: Sequence[Limit], est_input_tokens: int, max_output_tokens: int, max_cost_nano: int,
    *, distinct_ids: bool = False,
) -> list[tuple[Limit, int]]:
    """The most a request can take from each limit before it runs: one request, its estimated
    prompt, its maximum output, and the cost of all of that at the priciest candidate model.
    ``distinct_ids``: no two ``limits`` share an id, so the wants need no merging."""
    per_resource: dict[Resource, int] = {
        "requests": 1,
        "input_tokens": est_input_tokens,
        "output_tokens": max_output_tokens,
        "usd": max_cost_nano,
    }
    wants = [(limit, per_resource[limit.resource]) for limit in limits]
    if distinct_ids and est_input_tokens >= 0 and max_output_tokens >= 0 and max_cost_nano >= 0:
        return MergedWants(wants)
    return wants  # merge_wants checks (and refuses) a negative amount


def actual_for(limits: Sequence[Limit], usage: Usage, cost_nano: int) -> dict[str, int]:
    """What the request really used, per limit id, for ``Counters.settle``."""
    per_resource: dict[Resource, int] = {
        "requests": 1,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "usd": cost_nano,
    }
    return {limit.id: per_resource[limit.resource] for limit in limits}


def merge_wants(wants: Sequence[tuple[Limit, int]]) -> list[tuple[Limit, int]]:
    """One entry per limit id, in first-seen order; the same limit wanted twice is summed.
    Raises ``ValueError`` on a negative amount or on two different limits sharing an id
    (they would share one counter)."""
    if type(wants) is MergedWants:
        return wants
    merged: dict[str, tuple[Limit, int]] = {}
    for limit, amount in wants:
        if amount < 0:
            raise ValueError(f"limit {limit.id}: a reservation cannot want {amount} (< 0)")
        seen = merged.get(limit.id)
        if seen is None:
            merged[limit.id] = (limit, amount)
        elif seen[0] != limit:
            raise ValueError(f"two different limits share the id {limit.id}: {seen[0]}, {limit}")
        else:
            merged[limit.id] = (limit, seen[1] + amount)
    return list(merged.values())


def settle_amount(limit_id: str, held: int, actual: Mapping[str, int]) -> int:
    """What one hold settles at: the real amount, or the held one when ``actual`` does not
    name the limit (unknown use counts as the worst case, so budgets never under-count).
    Raises ``ValueError`` on a negative amount."""
    amount = actual.get(limit_id, held)
    if amount < 0:
        raise ValueError(f"limit {limit_id}: cannot settle {amount} (< 0)")
    return amount


def decide(
    wants: Sequence[tuple[Limit, int]], used: Mapping[str, int], now: float
) -> ReserveResult:
    """Whether merged ``wants`` fit, given ``used`` (limit id -> settled + reserved in the
    limit's current window; missing means 0). All or nothing: the first limit without room
    refuses the whole reservation, and then no warnings are reported."""
    holds: list[Hold] = []
    warnings: list[Limit] = []
    bounds: dict[str, tuple[float, float]] = {}  # per window kind: limits often share one
    for limit, amount in wants:
        window = bounds.get(limit.window)
        if window is None:
            window = bounds[limit.window] = window_bounds(limit.window, now)
        taken = used.get(limit.id, 0)
        if taken + amount > limit.amount:
            retry = None if limit.window == "total" else window[1] - now
            refusal = Refusal(limit=limit, used=taken, requested=amount, retry_after_s=retry)
            return ReserveResult(False, (), refusal, ())
        holds.append(Hold(limit, amount, window[0]))
        # most limits have no soft ratio: skip the call for them
        if limit.soft_above is not None and crosses_soft(limit, taken + amount):
            warnings.append(limit)
    return ReserveResult(True, tuple(holds), None, tuple(warnings))


def crosses_soft(limit: Limit, total: int) -> bool:
    """``total > soft_ratio x amount``, exactly (a float ratio times an int64 amount would
    round): for an integer total that is ``total > floor(soft_ratio x amount)``."""
    if limit.soft_above is None:
        return False
    if isinstance(total, int):
        return total > limit.soft_above
    return total > Fraction(limit.soft_ratio or 0) * limit.amount
