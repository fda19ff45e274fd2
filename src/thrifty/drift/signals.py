"""The signals drift detection watches, and how one finished request feeds them. Pure: an
:class:`Outcome` in, ``(target, signal, value)`` samples out.

    latency_ms          each successful non-streamed call's latency (log scale)
    output_tokens       each successful call's reported output tokens (log scale)
    error_rate          each call: 1 for an upstream failure (429, 5xx, timeout), else 0
    refusal_rate        the answer the client got: 1 when it opens with a refusal
    json_validity       the answer, when the request asked for JSON or tools: 1 when valid
    cascade_acceptance  each early cascade tier's answer: 1 accepted, 0 escalated

Latency and output tokens are watched as ``log(1 + x)``, so "five times slower" is the same
shift at 20 ms as at 2 s, and ``min_change`` for them is relative. A streamed answer's text
is judged (refusals, JSON), its tool calls are not assembled, so requests that offered
tools and streamed are left out of ``json_validity``; a streamed call's latency includes the
client's reading time, so it is left out of ``latency_ms``. Verifier calls are left out.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from thrifty.config.drift import Direction, DriftConfig, SignalName
from thrifty.drift.detectors import DetectorParams
from thrifty.providers.base import Target
from thrifty.routing.checks_format import format_problems
from thrifty.routing.refusal import is_refusal

if TYPE_CHECKING:
    from thrifty.engine.account import Outcome


@dataclass(frozen=True, slots=True)
class SignalSpec:
    name: SignalName
    enabled: bool
    log_scale: bool
    """The detector sees ``log(1 + x)``; baselines are reported back in natural units."""
    params: DetectorParams

    def to_natural(self, value: float) -> float:
        return math.expm1(value) if self.log_scale else value


def _rate(direction: Direction, min_change: float) -> DetectorParams:
    # Rates are 0/1 samples: the spread floor of 0.1 (a 1% base rate) keeps a model that
    # never refused during warm-up from alarming on its first refusals, and a clip of 3
    # makes an alarm take about six events close together (no false alarm in 20 runs of
    # 20,000 requests at a 5% base rate; a jump to 50% is caught in 12 to 45).
    return DetectorParams(clip=3.0, min_sd=0.1, min_change=min_change, direction=direction)


DEFAULTS: Mapping[SignalName, SignalSpec] = {
    # a 15% spread floor: a very steady fake or LAN deployment must not alarm on jitter
    "latency_ms": SignalSpec("latency_ms", True, True, DetectorParams(
        min_sd=0.15, min_change=math.log(1.3), direction="up")),
    "output_tokens": SignalSpec("output_tokens", True, True, DetectorParams(
        min_sd=0.15, min_change=math.log(1.3), direction="both")),
    "error_rate": SignalSpec("error_rate", True, False, _rate("up", 0.15)),
    "refusal_rate": SignalSpec("refusal_rate", True, False, _rate("up", 0.1)),
    "json_validity": SignalSpec("json_validity", True, False, _rate("down", 0.1)),
    "cascade_acceptance": SignalSpec("cascade_acceptance", True, False, _rate("both", 0.15)),
}


def signal_specs(cfg: DriftConfig) -> dict[SignalName, SignalSpec]:
    """The defaults with the config's overrides applied (only the fields it sets)."""
    out: dict[SignalName, SignalSpec] = {}
    for name, spec in DEFAULTS.items():
        o = cfg.signals.get(name)
        if o is not None:
            p = spec.params
            change = p.min_change
            if o.min_change is not None:  # relative for log-scale signals
                change = math.log1p(o.min_change) if spec.log_scale else o.min_change
            p = DetectorParams(
                warmup=o.warmup if o.warmup is not None else p.warmup,
                threshold=o.threshold if o.threshold is not None else p.threshold,
                slack=o.slack if o.slack is not None else p.slack,
                clip=p.clip, min_sd=p.min_sd, min_change=change,
                direction=o.direction or p.direction)
            spec = replace(spec, params=p,
                           enabled=o.enabled if o.enabled is not None else spec.enabled)
        out[name] = spec
    return out


Sample = tuple[Target, SignalName, float]


def samples(o: Outcome, wanted: Container[str] = DEFAULTS,
            targets: Container[str] | None = None) -> Iterator[Sample]:
    """Every signal value one finished request carries, on the detector's scale, for the
    deployments in ``targets`` (None: all). The answer's checks (refusal, JSON) run only
    for ``wanted`` signals: they are the cost."""
    if not o.calls:
        return
    plan = o.trace.plan or {}
    cascade = plan.get("mode") == "cascade"
    final_tier = len(plan.get("tiers") or ()) - 1
    streamed = o.req.stream
    for call in o.calls:
        if call.verdict == "verifier" or (targets is not None
                                          and call.target.key not in targets):
            continue
        status = call.status
        if status == 200:
            yield call.target, "error_rate", 0.0
            if not (streamed and call is o.accepted):
                yield call.target, "latency_ms", math.log1p(call.latency_ms)
            if call.usage is not None and not call.usage_estimated:
                yield call.target, "output_tokens", math.log1p(call.usage.output_tokens)
            if cascade and call.tier < final_tier and call.verdict:
                if call.verdict == "accepted":
                    yield call.target, "cascade_acceptance", 1.0
                elif call.verdict.startswith("escalated"):
                    yield call.target, "cascade_acceptance", 0.0
        elif status == 429 or 500 <= status < 600:
            yield call.target, "error_rate", 1.0
    yield from _answer_samples(o, wanted, targets)


def _answer_samples(o: Outcome, wanted: Container[str],
                    targets: Container[str] | None) -> Iterator[Sample]:
    answer, call = o.answer, o.accepted
    if answer is None or call is None or o.status != 200:
        return
    if targets is not None and call.target.key not in targets:
        return
    target = call.target
    if "refusal_rate" in wanted:
        yield target, "refusal_rate", 1.0 if answer.text and is_refusal(answer.text) else 0.0
    if "json_validity" not in wanted:
        return
    body = o.req.body
    if o.req.stream and body.get("tools"):
        return  # a streamed answer's tool calls are not assembled: no verdict possible
    if "response_format" not in body and "tools" not in body and not answer.tool_calls:
        return  # cheap exit for the common plain-text request
    problems = format_problems(answer, body)
    if problems is not None:
        yield target, "json_validity", 0.0 if problems else 1.0
