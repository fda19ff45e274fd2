#!/usr/bin/env python3
"""CPU per request of the budget checks alone, in process: the gateway's reserve (downgrade
check + reserve) and settle (including the settle task) with benchmarks/configs/harness.yaml's
three rules in memory counters, minus the same loop without them.

    python benchmarks/budget_micro.py [--requests 50000] [--rounds 5] [--profile]

Prints the best (least disturbed) and the median microseconds per request over the
rounds. ``--profile`` runs one round under cProfile instead and prints the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import time
from pathlib import Path

from thrifty.config.load import load_settings
from thrifty.config.resolve import resolve
from thrifty.core.request import ChatRequest
from thrifty.engine.account import Outcome
from thrifty.engine.gateway import Gateway

CONFIG = Path(__file__).parent / "configs" / "harness.yaml"
BODY = {"model": "mock-0ms", "max_tokens": 16,
        "messages": [{"role": "user", "content": "echo: hello world"}]}


def gateway() -> Gateway:
    os.environ.setdefault("BENCH_UPSTREAM_V1", "http://127.0.0.1:9/v1")
    settings = load_settings(CONFIG)
    return Gateway(resolve(settings, base_dir=CONFIG.parent))


async def run(gw: Gateway, n: int, budgets: bool) -> float:
    """Seconds spent, over ``n`` requests, in reserve + settle (if ``budgets``) and one
    event-loop turn (where a settle task would run), timed around just that part."""
    spent = 0
    for i in range(n):
        req = ChatRequest(body=BODY, model="mock-0ms", stream=False, include_usage=False,
                          request_id=f"r{i}")
        outcome = Outcome(req, 0.0, status=200)
        plan = gw._plan(outcome)
        started = time.perf_counter_ns()
        if budgets:
            await gw._reserve(outcome, plan)
            gw.budgets.settle(outcome, 1234)
        await asyncio.sleep(0)  # a settle task runs here
        spent += time.perf_counter_ns() - started
    return spent / 1e9


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    gw = gateway()
    assert len(gw.budgets.rules) == 3
    await run(gw, 2_000, True)  # warm the scope cache and the buckets
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        await run(gw, args.requests, True)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    per = []
    for _ in range(args.rounds):
        base = await run(gw, args.requests, False)
        full = await run(gw, args.requests, True)
        per.append((full - base) / args.requests * 1e6)
    print(f"budget checks: best {min(per):.1f}, median {statistics.median(per):.1f} us/request "
          f"(rounds: {', '.join(f'{p:.1f}' for p in per)})")
    await gw.budgets.close()


if __name__ == "__main__":
    asyncio.run(main())
