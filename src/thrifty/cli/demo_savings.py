"""``thrifty demo``'s "Routing savings on a replayed workload": the shipped ``auto`` route
replayed through the real gateway (planner, cascade executor, pricing) over a shipped sample
of real recorded answers (ZeroEval math and code, 15 models), next to always calling the
pool's best single model and always its cheapest. Reads package data only: no provider, no
network, no ledger."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

from rich.console import Console
from rich.table import Table

from thrifty.errors import ConfigError
from thrifty.pricing.price import Price
from thrifty.replay.bench import PoolResult, run_pool
from thrifty.replay.dataset import Pool, call_cost, pools, read_prices, read_rows
from thrifty.routing.defaults import shipped_routes

SAMPLE = "zeroeval_sample.jsonl"
PRICES = "zeroeval_prices.json"
POLICY = "auto"
SOURCE_NAMES = {"zeroeval_gsm8k": "GSM8K", "zeroeval_math_l5": "MATH level 5",
                "zeroeval_crux": "CRUXEval-O"}
TITLE = "Routing savings on a replayed workload"


@dataclass(frozen=True, slots=True)
class Strategy:
    """One line of the table: a way to serve the whole sample and what it came to."""

    name: str
    model: str
    """The model it always calls, or the route it replays."""
    quality: float
    cost: Decimal
    calls_per_prompt: float

    @classmethod
    def of(cls, name: str, model: str, result: PoolResult) -> Strategy:
        return cls(name, model, result.quality, result.cost, result.calls_per_prompt)


@dataclass(frozen=True, slots=True)
class Savings:
    rows: int
    sources: Mapping[str, int]
    models: int
    premium: Strategy
    cheapest: Strategy
    auto: Strategy

    def saved_pct(self, s: Strategy) -> float:
        """How much cheaper ``s`` is than always-premium, in percent."""
        return float((1 - s.cost / self.premium.cost) * 100) if self.premium.cost else 0.0


def load_sample() -> tuple[Pool, dict[str, Price]]:
    """The shipped sample as one pool, and its price file."""
    data = resources.files("thrifty.replay").joinpath("data")
    with contextlib.ExitStack() as stack:
        rows_path = stack.enter_context(resources.as_file(data.joinpath(SAMPLE)))
        prices_path = stack.enter_context(resources.as_file(data.joinpath(PRICES)))
        rows = read_rows(rows_path)
        prices = read_prices(prices_path)
    found = pools(rows)
    if len(found) != 1:  # the sample is built with one model set; anything else is a bad build
        raise ConfigError(f"the shipped replay sample holds {len(found)} pools, expected one")
    return found[0], prices


def cheapest_model(pool: Pool, prices: Mapping[str, Price]) -> str:
    """The model that would cost least to serve every prompt of the pool (by name on ties)."""
    return min(pool.models, key=lambda m: (sum((call_cost(r, m, prices) for r in pool.rows),
                                               Decimal(0)), m))


async def replay_savings(pool: Pool, prices: Mapping[str, Price], seed: int = 0) -> Savings:
    """All three strategies through the same replay gateway: ``auto``, then the best single
    model and the cheapest as plain model names (the direct policy)."""
    auto = await run_pool(pool, prices, shipped_routes(POLICY), POLICY, seed=seed)
    premium = await run_pool(pool, prices, {}, auto.best_model, seed=seed)
    cheap_name = cheapest_model(pool, prices)
    cheapest = await run_pool(pool, prices, {}, cheap_name, seed=seed)
    sources = Counter(r.source for r in pool.rows)
    order = list(SOURCE_NAMES)  # the dataset's order: gsm8k, math, crux; others after
    mix = dict(sorted(sources.items(), key=lambda kv: (
        order.index(kv[0]) if kv[0] in order else len(order), kv[0])))
    return Savings(len(pool.rows), mix, len(pool.models),
                   Strategy.of("always-premium", auto.best_model, premium),
                   Strategy.of("always-cheapest", cheap_name, cheapest),
                   Strategy.of(POLICY, f"route {POLICY} (rules + cascades)", auto))


def savings_table(s: Savings) -> Table:
    t = Table(title=f"{TITLE} ({s.rows} prompts)")
    for col in ("strategy", "model", "mean quality", "dollars", "calls/prompt",
                "vs always-premium"):
        t.add_column(col, justify="left" if col in ("strategy", "model") else "right")
    for line in (s.premium, s.cheapest, s.auto):
        saved = s.saved_pct(line)
        vs = "-" if line is s.premium else (f"{saved:.1f}% cheaper" if saved >= 0
                                            else f"{-saved:.1f}% dearer")
        t.add_row(line.name, line.model, f"{line.quality:.3f}", f"${line.cost:.4f}",
                  f"{line.calls_per_prompt:.2f}", vs,
                  style="bold" if line is s.auto else None)
    return t


def provenance(s: Savings) -> str:
    mix = ", ".join(f"{n} {SOURCE_NAMES.get(src, src)}" for src, n in s.sources.items())
    return (f"The rows are real recorded answers of {s.models} real models to {s.rows} prompts "
            f"({mix}) from WildEval/ZeroEval (Apache-2.0); quality is the recorded correctness "
            "of the answer returned (1 = correct), dollars are list prices x recorded tokens.")


def print_savings(console: Console, s: Savings) -> None:
    console.print(savings_table(s))
    console.print(provenance(s), highlight=False)
    console.print(f"On this sample auto saves {s.saved_pct(s.auto):.1f}% of always-premium's "
                  f"dollars at {s.auto.quality:.3f} mean quality vs {s.premium.quality:.3f} "
                  f"(a {s.rows}-prompt sample: each mean quality is +-0.05 at 95%).",
                  highlight=False)


async def show_savings(console: Console) -> Savings:
    """Load the sample, replay it, print the section; what ``thrifty demo`` calls."""
    pool, prices = load_sample()
    savings = await replay_savings(pool, prices)
    print_savings(console, savings)
    return savings


def run_savings() -> int:
    """``thrifty demo --savings-only``."""
    import asyncio

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 132))
    asyncio.run(show_savings(console))
    return 0
