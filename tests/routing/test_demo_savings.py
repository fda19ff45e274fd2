"""The demo's savings section: the shipped replay sample (licence-clean, the promised size and
mix) and the table's numbers, checked against a direct run of the replay bench."""

from __future__ import annotations

import argparse
import io
from decimal import Decimal

import pytest
from rich.console import Console

from thrifty.cli import demo
from thrifty.cli.demo_savings import (
    cheapest_model,
    load_sample,
    print_savings,
    replay_savings,
    show_savings,
)
from thrifty.replay.bench import run_pool
from thrifty.replay.dataset import call_cost
from thrifty.routing.defaults import shipped_routes

ZEROEVAL = {"zeroeval_gsm8k", "zeroeval_math_l5", "zeroeval_crux"}


def test_sample_is_240_zeroeval_rows_with_15_priced_models() -> None:
    pool, prices = load_sample()
    assert len(pool.rows) == 240
    assert {r.source for r in pool.rows} == ZEROEVAL  # never the CC BY-NC chat rows
    assert len({r.id for r in pool.rows}) == 240
    assert len(pool.models) == 15
    assert set(prices) == set(pool.models)
    assert all(r.models[m].answer is not None or r.models[m].quality == 0.0
               for r in pool.rows for m in pool.models)


def test_sample_is_stratified_in_proportion_to_the_dev_set() -> None:
    pool, _ = load_sample()
    counts = {s: sum(r.source == s for r in pool.rows) for s in ZEROEVAL}
    # 528 / 288 / 320 of 1,136 rows, scaled to 240 by largest remainder
    assert counts == {"zeroeval_gsm8k": 111, "zeroeval_math_l5": 61, "zeroeval_crux": 68}


async def test_section_numbers_equal_a_direct_replay() -> None:
    pool, prices = load_sample()
    savings = await replay_savings(pool, prices)
    direct = await run_pool(pool, prices, shipped_routes("auto"), "auto")
    assert (savings.auto.quality, savings.auto.cost, savings.auto.calls_per_prompt) == (
        direct.quality, direct.cost, direct.calls_per_prompt)
    # always-premium through the gateway equals the record's arithmetic for the best model
    assert savings.premium.model == direct.best_model
    assert savings.premium.quality == pytest.approx(direct.best_quality)
    assert savings.premium.cost == direct.best_cost
    assert savings.premium.calls_per_prompt == 1.0
    cheap = savings.cheapest.model
    assert cheap == cheapest_model(pool, prices)
    assert savings.cheapest.cost == sum((call_cost(r, cheap, prices) for r in pool.rows),
                                        Decimal(0))
    assert savings.saved_pct(savings.auto) == pytest.approx(
        float((1 - direct.cost / direct.best_cost) * 100))


async def test_auto_costs_less_than_always_premium_and_more_than_cheapest() -> None:
    pool, prices = load_sample()
    savings = await replay_savings(pool, prices)
    assert savings.cheapest.cost < savings.auto.cost < savings.premium.cost
    assert savings.saved_pct(savings.auto) > 0
    assert savings.auto.quality > savings.cheapest.quality
    assert savings.auto.calls_per_prompt > 1.0  # cascades: some prompts ask several models


async def test_printed_section_shows_the_figures() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)
    savings = await show_savings(console)
    text = out.getvalue()
    assert "Routing savings on a replayed workload" in text
    assert f"${savings.auto.cost:.4f}" in text
    assert f"{savings.saved_pct(savings.auto):.1f}% cheaper" in text
    assert "ZeroEval" in text and "recorded correctness" in text
    assert "gemma-2-9b-it" in text and savings.premium.model in text


async def test_replay_is_deterministic() -> None:
    pool, prices = load_sample()
    first = await replay_savings(pool, prices)
    assert await replay_savings(pool, prices) == first
    out_a, out_b = io.StringIO(), io.StringIO()
    print_savings(Console(file=out_a, width=200), first)
    print_savings(Console(file=out_b, width=200), await replay_savings(pool, prices))
    assert out_a.getvalue() == out_b.getvalue()


def test_savings_only_flag_runs_without_fakes(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    demo.register(parser)
    args = parser.parse_args(["--savings-only"])
    assert demo.run(args) == 0
    out = capsys.readouterr().out
    assert "always-premium" in out and "always-cheapest" in out and "auto" in out
    assert "thrifty demo:" not in out  # the fake-provider part did not run
