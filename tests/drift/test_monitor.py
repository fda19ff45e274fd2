"""The drift monitor without a network: which samples a finished request feeds, how alerts
open, demote and clear, the config's overrides, and the bounds on memory."""

from __future__ import annotations

import math
from typing import Any

import pytest

from thrifty.config.drift import DriftConfig
from thrifty.core.clock import FakeClock
from thrifty.core.request import ChatRequest
from thrifty.core.usage import Usage
from thrifty.drift.monitor import DriftMonitor, build_monitor
from thrifty.drift.signals import DEFAULTS, samples, signal_specs
from thrifty.engine.account import Outcome, ledger_entry
from thrifty.engine.calls import Call
from thrifty.errors import NotFound
from thrifty.pricing.price import ModelInfo, Price
from thrifty.providers.base import Target
from thrifty.routing.answer import Answer, ToolCall


def target(model: str, provider: str = "p") -> Target:
    info = ModelInfo(provider, model, Price.of("1", "2"), 128_000, 8192, frozenset(), "test")
    return Target(model=model, provider=provider, wire="openai", upstream_model=model,
                  base_url="http://127.0.0.1:1", info=info)


A, B = target("a"), target("b", "q")


def outcome(calls: list[Call], *, text: str | None = "Sure, here it is.",
            body: dict[str, Any] | None = None, stream: bool = False,
            plan: dict[str, Any] | None = None, status: int = 200) -> Outcome:
    req = ChatRequest(body={"model": "m", "messages": [], **(body or {})}, model="m",
                      stream=stream, include_usage=False, request_id="thr-1")
    o = Outcome(req, 0.0, status=status, calls=calls)
    ok = [c for c in calls if c.status == 200]
    o.accepted = ok[-1] if ok and status == 200 else None
    if o.accepted is not None and text is not None:
        o.answer = Answer(o.accepted.target.model, text, "stop")
    o.trace.plan = plan
    return o


def ok_call(t: Target = A, *, latency: float = 100.0, out: int = 50, tier: int = 0,
            verdict: str | None = "accepted") -> Call:
    return Call(t, tier, 200, Usage(input_tokens=10, output_tokens=out), latency_ms=latency,
                verdict=verdict)


def signals_of(o: Outcome) -> dict[str, list[float]]:
    got: dict[str, list[float]] = {}
    for t, name, value in samples(o):
        got.setdefault(f"{t.key}:{name}", []).append(value)
    return got


def test_a_plain_answer_feeds_latency_tokens_errors_and_refusals() -> None:
    got = signals_of(outcome([ok_call(latency=99.0, out=40)]))
    assert got == {"p/a:error_rate": [0.0], "p/a:latency_ms": [math.log1p(99.0)],
                   "p/a:output_tokens": [math.log1p(40)], "p/a:refusal_rate": [0.0]}


def test_failed_calls_count_as_errors_and_client_side_ones_do_not() -> None:
    calls = [Call(A, 0, 503, error_code="upstream_unavailable"), Call(A, 0, 429),
             Call(A, 0, 400), Call(A, 0, 499, error_code="cancelled"), ok_call(B)]
    got = signals_of(outcome(calls))
    assert got["p/a:error_rate"] == [1.0, 1.0]
    assert got["q/b:error_rate"] == [0.0]


def test_refusals_and_json_validity_are_read_from_the_answer() -> None:
    assert signals_of(outcome([ok_call()], text="I'm sorry, but I can't help with that."))[
        "p/a:refusal_rate"] == [1.0]
    fmt = {"response_format": {"type": "json_object"}}
    assert signals_of(outcome([ok_call()], text='{"a": 1}', body=fmt))[
        "p/a:json_validity"] == [1.0]
    assert signals_of(outcome([ok_call()], text='```json\n{"a": 1}\n```', body=fmt))[
        "p/a:json_validity"] == [0.0]
    assert "p/a:json_validity" not in signals_of(outcome([ok_call()]))
    refusal = outcome([ok_call()], text="I cannot help with that.")
    assert [n for _, n, _ in samples(refusal, {"error_rate"})] == ["error_rate",
                                                                   "latency_ms",
                                                                   "output_tokens"]


def test_streams_leave_out_latency_and_tool_validity() -> None:
    tools = {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}
    got = signals_of(outcome([ok_call()], stream=True, body=tools))
    assert "p/a:latency_ms" not in got and "p/a:json_validity" not in got
    assert got["p/a:refusal_rate"] == [0.0]
    o = outcome([ok_call()], body=tools)
    o.answer = Answer("a", "", "tool_calls", (ToolCall("f", "not json"),))
    assert signals_of(o)["p/a:json_validity"] == [0.0]


def test_cascade_acceptance_counts_early_tiers_only_and_skips_verifiers() -> None:
    plan = {"mode": "cascade", "tiers": [["a"], ["b"]]}
    calls = [ok_call(A, verdict="escalated: refusal"), ok_call(B, out=5, verdict="verifier"),
             ok_call(B, tier=1)]
    got = signals_of(outcome(calls, plan=plan))
    assert got["p/a:cascade_acceptance"] == [0.0]
    assert "q/b:cascade_acceptance" not in got  # the final tier always accepts
    assert got["q/b:output_tokens"] == [math.log1p(50)]  # not the verifier's 5
    accepted = signals_of(outcome([ok_call(A)], plan=plan))
    assert accepted["p/a:cascade_acceptance"] == [1.0]
    fallback = signals_of(outcome([ok_call(A)], plan={"mode": "fallback", "tiers": [["a"]]}))
    assert "p/a:cascade_acceptance" not in fallback


def test_overrides_apply_only_the_fields_set() -> None:
    specs = signal_specs(DriftConfig.model_validate({"signals": {
        "latency_ms": {"min_change": 1.0, "threshold": 20},
        "refusal_rate": {"enabled": False, "direction": "both"}}}))
    lat = specs["latency_ms"].params
    assert lat.min_change == pytest.approx(math.log(2.0))  # relative: "100% slower"
    assert lat.threshold == 20 and lat.warmup == DEFAULTS["latency_ms"].params.warmup
    assert specs["refusal_rate"].enabled is False
    assert specs["refusal_rate"].params.direction == "both"
    assert specs["error_rate"] == DEFAULTS["error_rate"]


def feed(m: DriftMonitor, o: Outcome, n: int) -> None:
    """``n`` requests 20 ms apart: under the default sampling rate, so every one is judged."""
    entry = ledger_entry(o)
    assert isinstance(m.clock, FakeClock)
    for _ in range(n):
        m.clock.advance(0.02)
        m.request_done(o, entry)


def refusing(t: Target = A) -> Outcome:
    return outcome([ok_call(t)], text="I cannot help with that request.")


def test_alert_opens_once_demotes_and_clears() -> None:
    clock = FakeClock()
    m = DriftMonitor(DriftConfig(demote=True), clock)
    feed(m, outcome([ok_call()]), 120)
    assert m.alerts() == [] and m.demoted == {}
    clock.advance(5)
    shift_at = clock.now()
    feed(m, refusing(), 30)  # more refusals after the alert open no second one
    [alert] = m.alerts()
    assert (alert.signal, alert.direction, alert.key) == ("refusal_rate", "up", "p/a")
    assert shift_at < alert.detected_at < clock.now() and alert.baseline == 0.0
    assert m.demoted == {"p/a": alert.id}
    doc = alert.to_json()
    assert set(doc) == {"id", "provider", "model", "signal", "direction", "baseline",
                        "current", "detected_at", "demoted", "cleared_at"}
    clock.advance(60)
    assert m.clear(alert.id).cleared_at == clock.now()
    assert m.alerts() == [] and m.demoted == {}
    assert m.alerts(include_cleared=True) == [alert]
    assert m.clear(alert.id) is alert  # clearing twice changes nothing
    feed(m, refusing(), 300)  # the detector re-learnt: refusing is the new normal
    assert m.alerts() == []


def test_demotion_stays_while_another_alert_of_the_model_is_open() -> None:
    m = DriftMonitor(DriftConfig(demote=True), FakeClock())
    feed(m, outcome([ok_call(latency=100.0, out=50)]), 120)
    feed(m, outcome([ok_call(latency=900.0, out=50)], text="I cannot help with that."), 20)
    first, second = sorted(m.alerts(), key=lambda a: a.signal)
    assert {first.signal, second.signal} == {"latency_ms", "refusal_rate"}
    m.clear(m.demoted["p/a"])
    assert m.demoted["p/a"] in (first.id, second.id)
    m.clear(m.demoted["p/a"])
    assert m.demoted == {}


def test_without_demote_alerts_do_not_demote() -> None:
    m = DriftMonitor(DriftConfig(), FakeClock())
    feed(m, outcome([ok_call()]), 120)
    feed(m, refusing(), 20)
    assert [a.demoted for a in m.alerts()] == [False] and m.demoted == {}


def test_unknown_alert_and_disabled_monitor() -> None:
    m = DriftMonitor(DriftConfig(), FakeClock())
    with pytest.raises(NotFound):
        m.clear("drift-nope")
    assert build_monitor(DriftConfig(enabled=False), FakeClock()) is None


def test_memory_is_bounded() -> None:
    m = DriftMonitor(DriftConfig(max_models=2, keep_cleared=1), FakeClock())
    for name in ("a", "b", "c"):
        feed(m, outcome([ok_call(target(name))]), 120)
        feed(m, refusing(target(name)), 20)
    assert {a.model for a in m.alerts()} == {"a", "b"}  # c was never watched
    for a in m.alerts():
        m.clear(a.id)
    assert len(m.alerts(include_cleared=True)) == 1


def test_sampling_caps_judged_requests_per_deployment_and_second() -> None:
    clock = FakeClock()
    m = DriftMonitor(DriftConfig(max_samples_per_s=10), clock)
    o = outcome([ok_call()])
    entry = ledger_entry(o)

    def judged() -> int:  # requests the latency detector has learnt from
        return m._trackers[A.key].detectors["latency_ms"]._n  # type: ignore[attr-defined, no-any-return]

    for _ in range(50):  # a burst at one instant: one second's bucket, then nothing
        m.request_done(o, entry)
    assert judged() == 10
    clock.advance(0.5)  # refills half the bucket
    for _ in range(50):
        m.request_done(o, entry)
    assert judged() == 15
    assert m._judged(outcome([ok_call(B)])).keys() == {B.key}  # B has its own bucket
    unlimited = DriftMonitor(DriftConfig(max_samples_per_s=None), FakeClock())
    assert all(unlimited._judged(o) for _ in range(1000))
