"""The routing contract: a :class:`Policy` turns a request's context into a :class:`Plan`.

Policies are pure: they read the request's features, a snapshot of live statistics, the
clock's ``now`` and a seeded ``random.Random``, and return an ordered plan plus the reasons
for it. The engine executes plans; policies never call a provider.

A plan is a list of tiers. In ``fallback`` mode the next tier is tried only when the
current one fails (an upstream error); in ``cascade`` mode it is also tried when the
current tier's answer fails its checks.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from thrifty.core.request import ChatRequest
from thrifty.providers.base import Target
from thrifty.routing.features import (
    RequestFeatures,
    RequestSize,
    extract_features,
    request_size,
)
from thrifty.routing.stats import StatsView

Mode = Literal["fallback", "cascade"]


@dataclass(frozen=True, slots=True)
class Tier:
    targets: tuple[Target, ...]
    """Called together (in parallel) when there are several, e.g. for agreement checks."""
    checks: tuple[Any, ...] = ()
    """Cascade checks (see ``routing.checks``); empty means the answer is accepted."""
    max_answer_usd: float | None = None
    """Cascade, final tier: its rescue budget (see ``routing.cascade.rescue_answer_usd``)."""
    fallback: bool = False
    """Cascade, early tier: answers when the final tier is over its budget."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model as a policy saw it: what it expected and why it ranked it so."""

    model: str
    provider: str
    expected_cost_usd: float | None = None
    expected_latency_ms: float | None = None
    score: float | None = None
    excluded: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "provider": self.provider}
        if self.expected_cost_usd is not None:
            out["expected_cost_usd"] = _rounded(self.expected_cost_usd)
        if self.expected_latency_ms is not None:
            out["expected_latency_ms"] = _rounded(self.expected_latency_ms)
        if self.score is not None:
            out["score"] = _rounded(self.score)
        if self.excluded is not None:
            out["excluded"] = self.excluded
        return out


def _rounded(value: float) -> float:
    return round(value, 9) if isinstance(value, float) else value


@dataclass(frozen=True, slots=True)
class Plan:
    policy: str
    mode: Mode
    tiers: tuple[Tier, ...]
    candidates: tuple[Candidate, ...] = ()
    reason: str = ""
    via: tuple[str, ...] = ()
    """Routes and rules passed through on the way (``rules:auto#2`` -> ``cheap``)."""
    router: Any = None
    """Learned plans: the router that chose, so live feedback can refine it."""
    prompt: str = ""
    """Learned plans: the text the router scored."""

    def tiers_targets(self) -> tuple[Target, ...]:
        """Every target in plan order (a fallback plan has one per tier)."""
        return tuple(t for tier in self.tiers for t in tier.targets)

    def summary(self) -> str:
        first = self.tiers[0].targets[0].model if self.tiers and self.tiers[0].targets else "-"
        return f"{self.policy}:{first}"

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "mode": self.mode,
            "via": list(self.via),
            "reason": self.reason,
            "tiers": [[t.model for t in tier.targets] for tier in self.tiers],
            "candidates": [c.to_json() for c in self.candidates],
        }


@dataclass(frozen=True, slots=True)
class RoutingOptions:
    """Per-request routing knobs from the ``thrifty`` body extension or x-thrifty-* headers."""

    quality_floor: float | None = None
    max_cost_usd: float | None = None
    latency_budget_ms: float | None = None
    policy: str | None = None


_NO_OPTIONS = RoutingOptions()


class RouteContext:
    """What a policy plans from: the request, its routing features, live stats, randomness
    and time passed in (so policies stay pure), and the request's routing options.

    ``features=None`` extracts them from the request when a policy first reads them:
    ranking policies read only :meth:`size`, a fifth of that work."""

    __slots__ = ("_features", "now", "options", "req", "rng", "stats")

    def __init__(self, req: ChatRequest, features: RequestFeatures | None, stats: StatsView,
                 rng: random.Random, now: float, options: RoutingOptions = _NO_OPTIONS
                 ) -> None:
        self.req = req
        self._features = features
        self.stats = stats
        self.rng = rng
        self.now = now
        self.options = options

    @property
    def features(self) -> RequestFeatures:
        if self._features is None:
            self._features = extract_features(self.req)
        return self._features

    def size(self) -> RequestSize:
        """``features.size()``, without extracting the features if they are not yet."""
        f = self._features
        return request_size(self.req) if f is None else f.size()

    def with_features(self, features: RequestFeatures) -> RouteContext:
        return RouteContext(self.req, features, self.stats, self.rng, self.now, self.options)


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    def plan(self, ctx: RouteContext) -> Plan: ...


class Resolver(Protocol):
    """How a policy reaches other routes (rules delegate to them)."""

    def policy_for(self, name: str) -> Policy: ...


def single_tiers(targets: Sequence[Target]) -> tuple[Tier, ...]:
    return tuple(Tier((t,)) for t in targets)


def by_model(targets: Sequence[Target]) -> Mapping[str, Target]:
    return {t.model: t for t in targets}
