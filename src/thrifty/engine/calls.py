"""What one request cost: every upstream call it made (fallback attempts, cascade tiers),
each priced on its own, and the decision trace the ledger keeps. Pure bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from thrifty.core.usage import Usage
from thrifty.pricing.cost import compute_cost, format_usd, to_nano_usd
from thrifty.providers.base import Target

_ZERO = Decimal(0)
_ZERO_USD = format_usd(_ZERO)


@dataclass(slots=True)
class Call:
    target: Target
    tier: int
    status: int = 200
    usage: Usage | None = None
    usage_estimated: bool = False
    latency_ms: float = 0.0
    error_code: str | None = None
    verdict: str | None = None
    """For cascade tiers: ``accepted``, or why the answer was not (``escalated: ...``)."""
    offset_ms: float = 0.0
    """When the call began, in ms after the request arrived (``Outcome.started``): traces
    and the gateway-overhead metric place calls on the request's timeline with it."""
    first_byte_ms: float | None = None
    """ms from the call's start to its answer (JSON) or first token (stream); None if it
    failed. ``latency_ms`` of a relayed stream is later stretched to the stream's end."""

    _priced: tuple[Usage, Decimal, int, str] | None = field(default=None, init=False,
                                                            repr=False, compare=False)
    """The cost of the usage it was computed from, as Decimal, nano-USD and text: the
    response, the ledger row, the trace and the metrics all read it (Decimal arithmetic,
    once per usage)."""

    def _price(self) -> tuple[Usage, Decimal, int, str] | None:
        usage = self.usage
        if usage is None:
            return None
        priced = self._priced
        if priced is None or priced[0] is not usage:
            cost = compute_cost(usage, self.target.info.price)
            priced = self._priced = (usage, cost, to_nano_usd(cost), format_usd(cost))
        return priced

    @property
    def cost(self) -> Decimal:
        priced = self._price()
        return _ZERO if priced is None else priced[1]

    @property
    def cost_nano_usd(self) -> int:
        """``to_nano_usd(cost)``: what the ledger stores."""
        priced = self._price()
        return 0 if priced is None else priced[2]

    @property
    def cost_usd(self) -> str:
        """``format_usd(cost)``: what responses and traces show."""
        priced = self._price()
        return _ZERO_USD if priced is None else priced[3]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tier": self.tier, "model": self.target.model,
                               "provider": self.target.provider, "status": self.status,
                               "cost_usd": self.cost_usd,
                               "latency_ms": round(self.latency_ms, 1)}
        if self.error_code:
            out["error"] = self.error_code
        if self.verdict:
            out["verdict"] = self.verdict
        if self.usage_estimated:
            out["usage_estimated"] = True
        return out


class PlanLike(Protocol):
    def to_json(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class Trace:
    """The decision trace: the plan, every call, and each cascade tier's checks."""

    checks: list[dict[str, Any]] = field(default_factory=list)
    escalation: str | None = None
    _plan: dict[str, Any] | None = field(default=None, repr=False)
    _plan_of: PlanLike | None = field(default=None, repr=False)
    """A plan not turned into JSON yet: ``plan`` does it when first read, which is when
    the request is accounted, after its upstream call, not before it."""

    @property
    def plan(self) -> dict[str, Any] | None:
        if self._plan is None and self._plan_of is not None:
            self._plan, self._plan_of = self._plan_of.to_json(), None
        return self._plan

    @plan.setter
    def plan(self, plan: dict[str, Any] | None) -> None:
        self._plan, self._plan_of = plan, None

    def plan_from(self, plan: PlanLike) -> None:
        """The plan's JSON, made when the trace is read (plans are immutable)."""
        self._plan, self._plan_of = None, plan

    def to_json(self, calls: list[Call]) -> dict[str, Any]:
        out: dict[str, Any] = {"calls": [c.to_json() for c in calls]}
        plan = self.plan
        if plan is not None:
            out["plan"] = plan
        if self.checks:
            out["checks"] = self.checks
        if self.escalation:
            out["escalation"] = self.escalation
        return out


def total_usage(calls: list[Call]) -> Usage | None:
    if len(calls) == 1:  # the common case, read several times per request
        return calls[0].usage
    used = [c.usage for c in calls if c.usage is not None]
    if not used:
        return None
    return Usage(
        input_tokens=sum(u.input_tokens for u in used),
        output_tokens=sum(u.output_tokens for u in used),
        cached_input_tokens=sum(u.cached_input_tokens for u in used),
        cache_write_tokens=sum(u.cache_write_tokens for u in used),
        reasoning_tokens=sum(u.reasoning_tokens for u in used),
    )
