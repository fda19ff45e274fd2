#!/usr/bin/env python3
"""Routing decision overhead: what ``thrifty.engine.planner.plan_request`` costs per request,
against a reference measured in the same run (a dict lookup + ``orjson.loads`` of the same
~1 KB request body: the least any gateway does to read a request and find its model).

Routes, over the 15 models of the shipped replay sample (``thrifty/replay/data``), priced
from its price file:

  direct          a plain model name
  fallback        an alias of three models, in order
  lowest-cost     all 15 models ranked by expected dollars
  effective-cost  all 15: dollars + latency past a budget + retry risk (stats seeded)
  auto            the shipped rules route: its regexes read the prompt (a general question
                  takes the default branch, so every rule is evaluated), then the cheap-first
                  cascade plan of auto-general
  learned         a lexical-feature router trained here on the sample (never shipped)

Every timed decision gets a fresh request (a distinct variant of the body) so the learned
router's prompt cache never hits. Prints median and p99 microseconds per decision and their
ratio to the reference, then replays the whole sample through the gateway (rows/s).

    python benchmarks/routing_overhead.py [--n 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path

import orjson

from thrifty.cli.demo_savings import PRICES, SAMPLE, load_sample
from thrifty.config.schema import RouteConfig
from thrifty.core.clock import SystemClock
from thrifty.core.request import ChatRequest
from thrifty.engine.planner import plan_request
from thrifty.pricing.price import Price
from thrifty.replay.bench import run_pool, runtime_for
from thrifty.replay.dataset import Pool
from thrifty.routing.defaults import shipped_routes
from thrifty.routing.stats import ModelStats, RouterStats
from thrifty.routing.table import RouteTable

RULE_COST_TARGET_US = 1000.0
LEARNED_TARGET_US = 5000.0
DIRECT = "gpt-4o-mini-2024-07-18"
FALLBACK = ["gpt-4o-mini-2024-07-18", "deepseek-v2.5", "claude-3-5-haiku-20241022"]

SYSTEM = ("You are the support assistant of an online shop that sells outdoor equipment. "
          "Answer politely and precisely, cite the order number when the customer gives one, "
          "never promise refunds the policy does not allow, and keep answers under 150 words. "
          "If the question is about a delivery, say which carrier and how to track it.")
USER = ("Hello, I ordered a two-person tent and a pair of hiking boots on the 3rd of this "
        "month (order 48213-B). The boots arrived yesterday but the tent is still missing and "
        "the tracking page has said 'label created' for nine days. I need the tent for a trip "
        "that starts on Friday. Can you tell me whether it has actually shipped, whether you "
        "can send it by express delivery at no extra cost, and, if it cannot arrive in time, "
        "how I can cancel just the tent and get my money back without returning the boots?")


def request_bodies(n: int) -> list[bytes]:
    """``n`` distinct ~1 KB chat bodies (the same request, a different ticket number)."""
    return [orjson.dumps({"model": DIRECT, "max_tokens": 400, "temperature": 0.2,
                          "messages": [{"role": "system", "content": SYSTEM},
                                       {"role": "user", "content": f"{USER} (ticket {i})"}]})
            for i in range(n)]


@contextlib.contextmanager
def sample_files() -> Iterator[tuple[Path, Path]]:
    data = resources.files("thrifty.replay").joinpath("data")
    with resources.as_file(data.joinpath(SAMPLE)) as rows, \
            resources.as_file(data.joinpath(PRICES)) as prices:
        yield rows, prices


def train_learned(out: Path) -> float:
    """Train a lexical router on the sample into ``out``; returns seconds taken."""
    from thrifty.routing.learned.dataset import load_prices, load_rows, select_pool
    from thrifty.routing.learned.train import TrainSpec, prepare, run_training

    t0 = time.perf_counter()
    with sample_files() as (rows_path, prices_path):
        rows, prices = load_rows(rows_path), load_prices(prices_path)
    models, pool = select_pool(rows, "zeroeval")
    data = prepare(pool, models, prices, "lexical", None)
    run_training(data, TrainSpec(features="lexical", holdout=0.0), None).router.save(out)
    return time.perf_counter() - t0


def routes_under_test(pool: Pool, router_dir: Path) -> dict[str, RouteConfig]:
    every = list(pool.models)
    routes = dict(shipped_routes("auto"))
    routes["fallback"] = RouteConfig(policy="fallback", models=FALLBACK)
    routes["lowest-cost"] = RouteConfig(policy="lowest-cost", models=every)
    routes["effective-cost"] = RouteConfig(policy="effective-cost", models=every,
                                           latency_budget_ms=2000,
                                           latency_price_usd_per_s=0.001)
    routes["learned"] = RouteConfig(policy="learned", router=str(router_dir))
    return routes


def seeded_stats(table: RouteTable, models: tuple[str, ...]) -> RouterStats:
    """Live statistics as after some traffic, so effective-cost has latencies to price."""
    rng = random.Random(1)
    stats = RouterStats()
    for m in models:
        target = table.resolve(m).targets[0]
        stats.seed(target.key, ModelStats(samples=50, ttft_ms=rng.uniform(100, 900),
                                          latency_ms=rng.uniform(800, 6000),
                                          output_tokens=rng.uniform(100, 500),
                                          error_rate=rng.uniform(0, 0.05),
                                          parse_failure_rate=rng.uniform(0, 0.02)))
    return stats


def timed_ns(fn: Callable[[int], object], n: int, warmup: int) -> list[int]:
    """Nanoseconds of each of ``n`` calls ``fn(warmup + i)``, after ``warmup`` calls."""
    for i in range(warmup):
        fn(i)
    gc.collect()
    clock = time.perf_counter_ns
    out = []
    for i in range(warmup, warmup + n):
        t0 = clock()
        fn(i)
        out.append(clock() - t0)
    return out


def median_p99_us(ns: list[int]) -> tuple[float, float]:
    ordered = sorted(ns)
    return statistics.median(ordered) / 1000, ordered[int(0.99 * (len(ordered) - 1))] / 1000


def plan_nth(reqs: list[ChatRequest], table: RouteTable, stats: RouterStats,
             rng: random.Random, clock: SystemClock, i: int) -> object:
    return plan_request(reqs[i], table, stats, rng, clock)


Figures = dict[str, tuple[float, float, str]]
"""label -> (median us, p99 us, what the decision planned)"""


def decisions(table: RouteTable, stats: RouterStats, bodies: list[bytes], n: int,
              warmup: int) -> Figures:
    """Per route, (median, p99) microseconds of ``plan_request``; ``reference`` first."""
    parsed = [orjson.loads(b) for b in bodies]
    lookup = {name: i for i, name in enumerate(table.names())}
    out: Figures = {"reference": (*median_p99_us(timed_ns(
        lambda i: (lookup[DIRECT], orjson.loads(bodies[i])), n, warmup)), "")}
    clock, rng = SystemClock(), random.Random(0)
    cases = {"direct": DIRECT, "fallback (3 models)": "fallback",
             "lowest-cost (15 models)": "lowest-cost",
             "effective-cost (15 models)": "effective-cost",
             "auto (rules + cascade plan)": "auto", "learned (lexical, 15 models)": "learned"}
    for label, model in cases.items():
        reqs = [ChatRequest(body=b, model=model, stream=False, include_usage=False,
                            request_id=f"bench-{i}") for i, b in enumerate(parsed)]
        _, plan = plan_request(reqs[0], table, stats, rng, clock)
        tiers = f"{len(plan.tiers)} tier" + ("s" if len(plan.tiers) > 1 else "")
        planned = " > ".join((*plan.via, f"{plan.policy}: {plan.mode} plan, {tiers}, first "
                              f"{plan.summary().split(':', 1)[1]}"))
        decide = functools.partial(plan_nth, reqs, table, stats, rng, clock)
        out[label] = (*median_p99_us(timed_ns(decide, n, warmup)), planned)
    return out


async def replay_rate(pool: Pool, prices: Mapping[str, Price], repeat: int) -> tuple[float, float]:
    """(rows/s, upstream calls/s) of replaying the sample through ``auto``; best of runs."""
    best, calls = 0.0, 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await run_pool(pool, prices, shipped_routes("auto"), "auto")
        rate = len(pool.rows) / (time.perf_counter() - t0)
        if rate > best:
            best, calls = rate, rate * result.calls_per_prompt
    return best, calls


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def report(figures: Figures, trained_s: float, body_len: int) -> None:
    ref_med, ref_p99, _ = figures["reference"]
    print(f"python {platform.python_version()}, {platform.system()}, {cpu_name()}")
    print(f"request body {body_len} bytes; learned router trained on the sample in "
          f"{trained_s:.2f} s")
    print(f"reference (dict lookup + orjson.loads of the body): median {ref_med:.2f} us, "
          f"p99 {ref_p99:.2f} us\n")
    print(f"  {'decision':<30} {'median us':>10} {'p99 us':>10} {'x ref median':>13} "
          f"{'x ref p99':>10}  plan")
    for label, (med, p99, planned) in figures.items():
        if label != "reference":
            print(f"  {label:<30} {med:10.2f} {p99:10.2f} {med / ref_med:13.1f} "
                  f"{p99 / ref_p99:10.1f}  {planned}")


def summary(figures: Figures) -> str:
    rule_cost = {k: v for k, v in figures.items() if k not in ("reference",)
                 and not k.startswith("learned")}
    worst = max(rule_cost, key=lambda k: rule_cost[k][1])
    learned = next(v for k, v in figures.items() if k.startswith("learned"))
    ok_rules = rule_cost[worst][1] < RULE_COST_TARGET_US
    ok_learned = learned[1] < LEARNED_TARGET_US
    return (f"targets: rule/cost decisions < 1 ms: {'OK' if ok_rules else 'MISSED'} "
            f"(worst p99 {rule_cost[worst][1]:.1f} us, {worst}); learned < 5 ms: "
            f"{'OK' if ok_learned else 'MISSED'} (p99 {learned[1]:.1f} us)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="timed decisions per route")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--replays", type=int, default=5, help="full replays of the sample")
    args = ap.parse_args()

    pool, prices = load_sample()
    bodies = request_bodies(args.n + args.warmup)
    with tempfile.TemporaryDirectory(prefix="thrifty-bench-") as tmp:
        trained_s = train_learned(Path(tmp) / "router")
        runtime = runtime_for(pool, prices, routes_under_test(pool, Path(tmp) / "router"), None)
        stats = seeded_stats(runtime.routes, pool.models)
        figures = decisions(runtime.routes, stats, bodies, args.n, args.warmup)
    report(figures, trained_s, len(bodies[0]))
    rows_s, calls_s = asyncio.run(replay_rate(pool, prices, args.replays))
    print(f"\nfull replay of the sample through auto (gateway, cascade checks, pricing): "
          f"{rows_s:,.0f} rows/s ({calls_s:,.0f} replayed upstream calls/s; "
          f"{1e6 / rows_s:,.0f} us per row), best of {args.replays}")
    print(summary(figures))


if __name__ == "__main__":
    main()
