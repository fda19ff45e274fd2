#!/usr/bin/env python3
"""What the metrics observer costs per request: ``Metrics.request_done`` on realistic
finished requests (a JSON answer, a stream, a fallback after a failed call), in
prometheus_client's single-process mode (``--workers 1``) and multiprocess mode (values in
shared memory-mapped files, ``--workers N``), against a no-op observer measured in the
same run.

    python benchmarks/metrics_overhead.py [--requests 50000] [--rounds 5]

Prints microseconds per request (median of the rounds) and the difference to the no-op,
and what one flush of the accumulated figures into the series costs (per series touched;
done at each scrape, and once a second with several workers).
In-process and offline; the multiprocess rows write to a temporary directory it removes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from thrifty.config.load import parse_settings
from thrifty.config.resolve import resolve
from thrifty.config.telemetry import MetricsConfig
from thrifty.core.request import ChatRequest
from thrifty.core.usage import Usage
from thrifty.engine.account import Outcome, ledger_entry
from thrifty.engine.calls import Call
from thrifty.ledger.entry import LedgerEntry

CONFIG = {
    "providers": {"openai": {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-bench-000000"},
                  "anthropic": {"base_url": "http://127.0.0.1:9", "api_key": "sk-bench-000001"}},
    "models": {"mini": {"provider": "openai", "model": "gpt-4o-mini",
                        "price": {"input": "0.15", "output": "0.60"}},
               "haiku": {"provider": "anthropic", "model": "claude-haiku-4-5",
                         "price": {"input": "0.80", "output": "4.00"}}},
    "aliases": {"cheap": ["mini", "haiku"]},
    "ledger": {"backend": "none"},
}


def scenarios() -> dict[str, tuple[Outcome, LedgerEntry]]:
    routes = resolve(parse_settings(CONFIG, origin="bench")).routes
    mini = routes.resolve("mini").targets[0]
    haiku = routes.resolve("haiku").targets[0]
    usage = Usage(input_tokens=812, output_tokens=164, cached_input_tokens=256)

    def outcome(stream: bool, calls: list[Call], route: str) -> tuple[Outcome, LedgerEntry]:
        req = ChatRequest(body={"model": "cheap", "messages": []}, model="cheap",
                          stream=stream, include_usage=stream, request_id="thr-bench",
                          key_id="key_0123456789abcdef", team="research")
        o = Outcome(req, time.time(), status=200, route=route, calls=calls,
                    accepted=calls[-1], latency_ms=420.0, ttft_ms=180.0 if stream else 420.0)
        o.trace.plan = {"mode": "fallback"}
        return o, ledger_entry(o)

    ok = Call(mini, 0, usage=usage, latency_ms=418.0, first_byte_ms=418.0, offset_ms=1.0)
    streamed = Call(mini, 0, usage=usage, latency_ms=420.0, first_byte_ms=178.0, offset_ms=1.0)
    failed = Call(mini, 0, status=503, latency_ms=40.0, error_code="upstream_unavailable",
                  offset_ms=1.0)
    rescued = Call(haiku, 1, usage=usage, latency_ms=370.0, first_byte_ms=370.0, offset_ms=45.0)
    return {"json, 1 call": outcome(False, [ok], "direct"),
            "stream, 1 call": outcome(True, [streamed], "direct"),
            "fallback, 2 calls": outcome(False, [failed, rescued], "cheap;fallback")}


class NoOp:
    def request_done(self, outcome: Outcome, entry: LedgerEntry) -> None:
        pass


def per_request_us(fn: Callable[[Outcome, LedgerEntry], None], o: Outcome, e: LedgerEntry,
                   n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn(o, e)
    return (time.perf_counter() - t0) / n * 1e6


def measure(mode: str, cfg: MetricsConfig, n: int, rounds: int) -> list[tuple[str, Any]]:
    from thrifty.telemetry.metrics import Metrics

    metrics, noop = Metrics(cfg), NoOp()
    rows = []
    for name, (o, e) in scenarios().items():
        metrics.request_done(o, e)  # children cached, as after the first request
        base, cost = [], []
        for _ in range(rounds):
            base.append(per_request_us(noop.request_done, o, e, n))
            cost.append(per_request_us(metrics.request_done, o, e, n))
        b, c = statistics.median(base), statistics.median(cost)
        rows.append((f"{mode:<13} {name:<18}", (b, c, c - b)))
    t0 = time.perf_counter()
    metrics.flush()  # what requests added goes to the series: per series, not per request
    rows.append((f"{mode:<13} {'flush (once/s)':<18}", (0.0, (time.perf_counter() - t0) * 1e6,
                                                         0.0)))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    cfg = MetricsConfig.model_validate({"labels": {"key": True, "team": True, "route": True}})
    rows = measure("single", cfg, args.requests, args.rounds)
    shared = tempfile.mkdtemp(prefix="thrifty-bench-metrics-")
    try:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared
        from thrifty.telemetry.multiproc import _reload_value_class

        _reload_value_class()
        rows += measure("multiprocess", cfg, args.requests, args.rounds)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    print(f"{'mode':<13} {'request':<18} | no-op us | metrics us | +us/request")
    for label, (b, c, d) in rows:
        print(f"{label} | {b:8.2f} | {c:10.2f} | {d:+10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
