#!/usr/bin/env python3
"""Drift detection overhead: what ``DriftMonitor.request_done`` costs per finished request
(on the request path), against a reference measured in the same run: ``ledger_entry`` of
the same outcome, which the gateway builds for every request anyway.

Request shapes (the answers vary per request so no regex or cache sees the same text):

  plain     a ~120-word text answer: latency, tokens, errors, refusal check
  json      a json_schema answer: the above plus JSON parsing and schema validation
  cascade   a two-tier cascade (cheap answer escalated, strong answer accepted)
  failed    a 503 then a fallback answer

Prints median and p99 microseconds per request for each, and their ratio to the reference.

    python benchmarks/drift_overhead.py [--n 20000]
"""

from __future__ import annotations

import argparse
import functools
import gc
import platform
import random
import statistics
import time
from collections.abc import Callable

from thrifty.config.drift import DriftConfig
from thrifty.core.clock import SystemClock
from thrifty.core.request import ChatRequest
from thrifty.core.usage import Usage
from thrifty.drift.monitor import DriftMonitor
from thrifty.engine.account import Outcome, ledger_entry
from thrifty.engine.calls import Call
from thrifty.fake.brain import filler
from thrifty.pricing.price import ModelInfo, Price
from thrifty.providers.base import Target
from thrifty.routing.answer import Answer

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"},
                                           "confidence": {"type": "number"}},
          "required": ["answer", "confidence"]}


def target(model: str, provider: str) -> Target:
    info = ModelInfo(provider, model, Price.of("0.15", "0.60"), 128_000, 8192, frozenset())
    return Target(model=model, provider=provider, wire="openai", upstream_model=model,
                  base_url="http://127.0.0.1:1", info=info)


CHEAP, STRONG = target("cheap", "openai"), target("strong", "anthropic")


def call(t: Target, rng: random.Random, tier: int = 0, status: int = 200,
         verdict: str | None = "accepted") -> Call:
    usage = Usage(input_tokens=200, output_tokens=rng.randint(60, 200)) if status == 200 else None
    return Call(t, tier, status, usage, latency_ms=rng.uniform(200, 900), verdict=verdict)


def make(kind: str, rng: random.Random) -> Outcome:
    body: dict[str, object] = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    text = filler(rng, 120)
    plan: dict[str, object] = {"mode": "fallback", "tiers": [["cheap"]]}
    if kind == "json":
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "a", "schema": SCHEMA}}
        text = f'{{"answer": "{filler(rng, 20)}", "confidence": {rng.random():.2f}}}'
    calls = [call(CHEAP, rng)]
    if kind == "cascade":
        plan = {"mode": "cascade", "tiers": [["cheap"], ["strong"]]}
        calls = [call(CHEAP, rng, verdict="escalated: refusal"), call(STRONG, rng, 1)]
    elif kind == "failed":
        calls = [call(CHEAP, rng, status=503, verdict=None), call(STRONG, rng)]
    req = ChatRequest(body=body, model="m", stream=False, include_usage=False,
                      request_id="thr-bench")
    o = Outcome(req, time.time(), 200, route="bench", calls=calls, accepted=calls[-1])
    o.answer = Answer(calls[-1].target.model, text, "stop")
    o.trace.plan = plan
    return o


def timed(fn: Callable[[Outcome], object], outcomes: list[Outcome]) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for o in outcomes:
            t0 = clock()
            fn(o)
            out.append((clock() - t0) / 1000)
    finally:
        gc.enable()
    return out


def p99(xs: list[float]) -> float:
    return sorted(xs)[int(len(xs) * 0.99)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    rng = random.Random(7)
    print(f"python {platform.python_version()} on {platform.machine()}, n={args.n} per shape")
    print(f"{'shape':<10}{'drift med us':>14}{'p99 us':>10}{'ledger_entry med us':>22}"
          f"{'ratio':>8}")
    for kind in ("plain", "json", "cascade", "failed"):
        outcomes = [make(kind, rng) for _ in range(args.n)]
        # every request judged: the cost of one judged request (the default judges at most
        # 100 per second per deployment; the rest cost a token-bucket check)
        monitor = DriftMonitor(DriftConfig(max_samples_per_s=None), SystemClock())
        done = functools.partial(monitor.request_done, entry=ledger_entry(outcomes[0]))
        timed(done, [make(kind, rng) for _ in range(200)])  # past the warm-up
        drift = timed(done, outcomes)
        ref = timed(ledger_entry, outcomes)
        med, ref_med = statistics.median(drift), statistics.median(ref)
        print(f"{kind:<10}{med:>14.2f}{p99(drift):>10.2f}{ref_med:>22.2f}"
              f"{med / ref_med:>8.2f}")


if __name__ == "__main__":
    main()
