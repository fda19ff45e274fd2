"""Demotion in plans, pure: demoted deployments leave fallback plans and early cascade
tiers unless nothing else can serve, and the plan's trace says so."""

from __future__ import annotations

import random

from tests.drift.test_monitor import target
from thrifty.core.clock import FakeClock
from thrifty.core.request import ChatRequest
from thrifty.engine.planner import plan_request
from thrifty.routing.demotion import demote
from thrifty.routing.policies import Fallback
from thrifty.routing.policy import Candidate, Plan, Tier, single_tiers
from thrifty.routing.stats import RouterStats
from thrifty.routing.table import Route, RouteTable

A, B, C = target("a"), target("b", "q"), target("c", "r")


def fallback(*ts: object) -> Plan:
    targets = [t for t in ts if not isinstance(t, str)]
    return Plan("fallback", "fallback", single_tiers(targets),  # type: ignore[arg-type]
                tuple(Candidate(t.model, t.provider) for t in targets), "configured order")


def models(plan: Plan) -> list[list[str]]:
    return [[t.model for t in tier.targets] for tier in plan.tiers]


def test_nothing_demoted_is_the_same_plan() -> None:
    plan = fallback(A, B)
    assert demote(plan, {}) is plan
    assert demote(plan, {"z/z": "drift-1"}) is plan


def test_a_demoted_fallback_target_is_dropped_and_traced() -> None:
    out = demote(fallback(A, B, C), {"p/a": "drift-1"})
    assert models(out) == [["b"], ["c"]]
    assert "demoted: p/a (drift alert drift-1)" in out.reason
    [cand] = [c for c in out.candidates if c.model == "a"]
    assert cand.excluded == "demoted: drift alert drift-1"
    assert "demoted" in str(out.to_json())


def test_when_everything_is_demoted_the_plan_stays() -> None:
    plan = fallback(A, B)
    out = demote(plan, {"p/a": "drift-1", "q/b": "drift-2"})
    assert models(out) == models(plan)
    assert "nothing else can serve" in out.reason


def test_cascade_skips_a_demoted_early_tier_and_keeps_the_final_one() -> None:
    plan = Plan("cascade", "cascade", (Tier((A,)), Tier((B, C)), Tier((C,))))
    assert models(demote(plan, {"p/a": "d1"})) == [["b", "c"], ["c"]]
    assert models(demote(plan, {"r/c": "d1"})) == [["a"], ["b"], ["c"]]


def test_the_planner_applies_demotion() -> None:
    table = RouteTable({"x": Route("x", "alias", (A, B), Fallback((A, B)))})
    req = ChatRequest(body={"model": "x", "messages": [{"role": "user", "content": "hi"}]},
                      model="x", stream=False, include_usage=False, request_id="thr-1")
    args = (req, table, RouterStats(), random.Random(0), FakeClock())
    _, plan = plan_request(*args)
    assert models(plan) == [["a"], ["b"]]
    _, plan = plan_request(*args, demoted={"p/a": "drift-1"})
    assert models(plan) == [["b"]]
