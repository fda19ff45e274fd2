"""Running the routing bench over every pool of a dataset and printing what it found."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from thrifty.errors import ConfigError
from thrifty.replay.bench import PoolResult, run_pool
from thrifty.replay.dataset import Pool, pools, read_prices, read_rows
from thrifty.replay.policy_source import load_policy


async def bench_routing(args: argparse.Namespace) -> int:
    rows = read_rows(Path(args.data))
    prices = read_prices(Path(args.prices))
    out: dict[str, Any] = {}
    results: list[PoolResult] = []
    for pool in pools(rows):
        try:
            routes, name, base = load_policy(args.policy, pool.models, args.route,
                                             quality_floor=args.quality_floor,
                                             threshold=args.threshold)
            result = await run_pool(pool, prices, routes, name, base, seed=args.seed)
        except ConfigError as exc:
            print(f"pool {pool.name}: skipped: {exc.message}", file=sys.stderr)
            continue
        entry = result.to_json()
        if args.strong and args.weak:
            entry["apgr"] = round(_apgr(pool, args), 4)
        out[pool.name] = entry
        results.append(result)
    if not out:
        print("no pool could be replayed with this policy", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps({"pools": out}, option=orjson.OPT_INDENT_2).decode()
                         + "\n")
    else:
        _print(out, args.policy)
    return 0


def _apgr(pool: Pool, args: argparse.Namespace) -> float:
    """RouteLLM's APGR between --strong and --weak: route the top-k prompts by the policy's
    strong-need score to the strong model, k = 0..n, area under the recovered-gap curve."""
    from thrifty.routing.learned.router import LearnedRouter

    if args.strong not in pool.models or args.weak not in pool.models:
        raise ConfigError(f"pool {pool.name} has no {args.strong} or {args.weak}")
    path = Path(args.policy)
    if not path.is_dir():
        raise ConfigError("--strong/--weak sweep the threshold of a trained router "
                          "directory given as --policy")
    router = LearnedRouter.load(path)
    scores = [router.strong_win_score(r.prompt) for r in pool.rows]
    return apgr(pool, args.weak, args.strong, scores)


def apgr(pool: Pool, weak: str, strong: str, scores: list[float]) -> float:
    n = len(pool.rows)
    qw = [r.models[weak].quality for r in pool.rows]
    qs = [r.models[strong].quality for r in pool.rows]
    mean_w, gap = sum(qw) / n, (sum(qs) - sum(qw)) / n
    if not gap:
        return float("nan")
    order = sorted(range(n), key=lambda i: -scores[i])
    total, area, prev = sum(qw), 0.0, 0.0
    for i in order:
        total += qs[i] - qw[i]
        y = (total / n - mean_w) / gap
        area += (1 / n) * (prev + y) / 2
        prev = y
    return area


def _print(out: dict[str, Any], policy: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"routing bench: policy {policy}")
    for col in ("pool", "rows", "quality", "cost $", "calls/prompt", "best single",
                "best q", "best $", "q ratio", "cost ratio", "APGR"):
        t.add_column(col, justify="left" if col in ("pool", "best single") else "right")
    for name, e in out.items():
        b = e["best_single"]
        t.add_row(name, str(e["rows"]), f"{e['quality']:.4f}", f"{e['cost']:.4f}",
                  f"{e['calls_per_prompt']:.2f}", b["model"], f"{b['quality']:.4f}",
                  f"{b['cost']:.4f}", f"{e['quality'] / b['quality']:.3f}" if b["quality"]
                  else "-", f"{e['cost'] / b['cost']:.3f}" if b["cost"] else "-",
                  f"{e['apgr']:.4f}" if "apgr" in e else "-")
    Console(width=160).print(t)
