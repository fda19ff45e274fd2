"""From a request to a plan: resolve the route, read the request's features, apply the
per-request routing options, and ask the route's policy. The only impure inputs (the clock
and the random generator) are owned by the gateway and passed in here."""

from __future__ import annotations

import random
from collections.abc import Mapping

from thrifty.config.schema import RouteConfig
from thrifty.core.clock import Clock
from thrifty.core.memo import IdentityMemo
from thrifty.core.request import ChatRequest
from thrifty.errors import InvalidRequest
from thrifty.routing.build import RANKING, ranking_policy
from thrifty.routing.demotion import demote
from thrifty.routing.policy import Plan, Policy, RouteContext, RoutingOptions
from thrifty.routing.stats import StatsView
from thrifty.routing.table import Route, RouteTable

_NO_OPTIONS = RoutingOptions()
_OVERRIDDEN: IdentityMemo[Route, dict[str, Policy]] = IdentityMemo(lambda route: {}, 1024)
"""Per route, the ranking policies requests asked for by name, built once: a ranking
policy prepares its targets."""


def options_of(req: ChatRequest) -> RoutingOptions:
    o = req.options
    if (o.quality_floor is None and o.max_cost_usd is None and o.latency_budget_ms is None
            and o.policy is None):
        return _NO_OPTIONS  # most requests set none: share one (it is frozen)
    return RoutingOptions(o.quality_floor, o.max_cost_usd, o.latency_budget_ms, o.policy)


def policy_for(route: Route, routes: RouteTable, override: str | None) -> Policy:
    """The route's policy, or the one the request asked for: another route's policy by
    name, or a ranking policy applied to this route's models."""
    if override is None:
        return route.policy
    if override in RANKING:
        built = _OVERRIDDEN(route)
        policy = built.get(override)
        if policy is None:
            policy = built[override] = ranking_policy(override, route.targets, RouteConfig())
        return policy
    if override in routes:
        return routes.policy_for(override)
    raise InvalidRequest(
        f"unknown policy {override!r}: use one of {', '.join(RANKING)} or a route name",
        param="thrifty.policy", code="invalid_value")


def plan_request(
    req: ChatRequest,
    routes: RouteTable,
    stats: StatsView,
    rng: random.Random,
    clock: Clock,
    demoted: Mapping[str, str] | None = None,
) -> tuple[Route, Plan]:
    """``demoted``: deployment keys with an open drift alert (key -> alert id), taken out
    of the plan unless nothing else can serve."""
    route = routes.resolve(req.model)
    options = options_of(req)
    policy = policy_for(route, routes, options.policy)
    # Features are extracted only if the policy reads them (ranking policies read only the
    # request's size); language is detected by rule sets that need it.
    ctx = RouteContext(req, None, stats, rng, clock.now(), options)
    plan = policy.plan(ctx)
    return route, demote(plan, demoted) if demoted else plan


def route_summary(route: Route, plan: Plan) -> str:
    """The ``x-thrifty-route`` value: route, policy and the rule path taken."""
    if route.kind == "model" and plan.policy == "direct":
        return "direct"
    via = ">".join(plan.via)
    return f"{route.label};{plan.policy}" + (f";{via}" if via else "")
