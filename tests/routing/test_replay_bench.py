"""``thrifty bench routing`` on a small hand-made dataset whose numbers are worked out by
hand: a ranking policy (lowest-cost is always the cheapest model), the shipped ``auto``
route (cheap models that agree end the cascade early), and a cascade from a YAML config.
The replay runs the real gateway, so these figures are what live traffic would cost."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from thrifty.cli.main import main as cli_main

FLASH, DEEPSEEK, MINI = "gemini-1.5-flash", "deepseek-v2.5", "gpt-4o-mini-2024-07-18"
LLAMA, QWEN = "llama-3.1-70b-instruct", "qwen2-72b-instruct"
GPT4O, SONNET = "gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022"
MODELS = (FLASH, DEEPSEEK, MINI, LLAMA, QWEN, GPT4O, SONNET)
# USD per 1M tokens. gemini-1.5-flash is the cheapest by far on input and output alike, so
# lowest-cost picks it whatever output lengths the live statistics learn. (The policy
# expects the prompt's own few tokens in and, before any history, 300 out; after a call, the
# recorded output length: flash at <500 tokens x 0.05 stays under deepseek's 300 x 0.28.)
PRICES = {FLASH: (Decimal("0.02"), Decimal("0.05")), DEEPSEEK: (Decimal("0.14"), Decimal("0.28")),
          MINI: (Decimal("0.15"), Decimal("0.60")), LLAMA: (Decimal("0.50"), Decimal("0.50")),
          QWEN: (Decimal("0.90"), Decimal("0.90")), GPT4O: (Decimal("2.50"), Decimal("10")),
          SONNET: (Decimal("3"), Decimal("15"))}

CODE = "[PYTHON]\ndef f(x):\n    return 4 * x\n[/PYTHON]\nassert f(3) == ??"
MATH = "Compute $x^2$ when $x = 3$."
GENERAL = "Name the capital of France in one word."

# id -> (prompt, {model: (answer, quality)}); models not listed answer "0" with quality 0,
# except the two strong models, which are always right.
SPEC: dict[str, tuple[str, dict[str, tuple[str, float]]]] = {
    # code cascade: deepseek, then gpt-4o-mini (must agree), else gpt-4o
    "code-agree": (CODE, {DEEPSEEK: ("12", 1.0), MINI: ("12", 1.0)}),
    "code-split": (CODE, {DEEPSEEK: ("12", 1.0), MINI: ("13", 0.0)}),
    # math cascade: flash, deepseek, mini, llama, qwen (each agreeing with an earlier one),
    # else claude
    "math-agree-2": (MATH, {FLASH: ("8", 0.0), DEEPSEEK: ("8", 0.0)}),  # agree, both wrong
    "math-agree-3": (MATH, {FLASH: ("9", 1.0), DEEPSEEK: ("8", 0.0), MINI: ("9", 1.0)}),
    "math-none": (MATH, {FLASH: ("1", 0.0), DEEPSEEK: ("2", 0.0), MINI: ("3", 0.0),
                         LLAMA: ("4", 0.0), QWEN: ("5", 0.0)}),
    # general cascade: flash, deepseek, mini, qwen, else gpt-4o
    "general-agree": (GENERAL, {FLASH: ("Paris", 1.0), DEEPSEEK: ("Paris", 1.0)}),
}
# What `auto` does on each row, worked out from the shipped cascades above:
# (models called in order, the model whose answer is returned: the latest agreeing one)
AUTO: dict[str, tuple[tuple[str, ...], str]] = {
    "code-agree": ((DEEPSEEK, MINI), MINI),
    "code-split": ((DEEPSEEK, MINI, GPT4O), GPT4O),
    "math-agree-2": ((FLASH, DEEPSEEK), DEEPSEEK),
    "math-agree-3": ((FLASH, DEEPSEEK, MINI), MINI),
    "math-none": ((FLASH, DEEPSEEK, MINI, LLAMA, QWEN, SONNET), SONNET),
    "general-agree": ((FLASH, DEEPSEEK), DEEPSEEK),
}
PROMPT_TOKENS = 20_000  # the report rounds dollars to 6 decimals: keep them visible


def output_tokens(row_id: str, model: str) -> int:
    """Distinct per row and model, so a wrong pick shows in the dollars."""
    return 200 + 37 * MODELS.index(model) + 11 * list(SPEC).index(row_id)


def record(row_id: str) -> dict[str, Any]:
    prompt, given = SPEC[row_id]
    models = {}
    for m in MODELS:
        answer, quality = given.get(m, ("0", 1.0 if m in (GPT4O, SONNET) else 0.0))
        models[m] = {"quality": quality, "output_tokens": output_tokens(row_id, m),
                     "answer": answer}
    source = "zeroeval_" + row_id.split("-")[0]
    return {"id": row_id, "source": source, "prompt": prompt, "prompt_tokens": PROMPT_TOKENS,
            "models": models}


def quality(row_id: str, model: str) -> float:
    return float(record(row_id)["models"][model]["quality"])


def call_cost(row_id: str, model: str) -> Decimal:
    p_in, p_out = PRICES[model]
    return (PROMPT_TOKENS * p_in + output_tokens(row_id, model) * p_out) / Decimal(1_000_000)


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "rows.jsonl"
    data.write_bytes(b"".join(orjson.dumps(record(i)) + b"\n" for i in SPEC))
    prices = tmp_path / "prices.json"
    prices.write_bytes(orjson.dumps({m: {"input_per_mtok": str(i), "output_per_mtok": str(o)}
                                     for m, (i, o) in PRICES.items()}))
    return data, prices


def bench(capsys: pytest.CaptureFixture[str], data: Path, prices: Path,
          *args: str) -> dict[str, Any]:
    code = cli_main(["bench", "routing", "--data", str(data), "--prices", str(prices),
                     "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    assert list(report) == ["pools"] and list(report["pools"]) == ["zeroeval"]
    pool: dict[str, Any] = report["pools"]["zeroeval"]
    assert set(pool) >= {"rows", "quality", "cost", "calls_per_prompt", "best_single"}
    assert set(pool["best_single"]) == {"model", "quality", "cost"}
    return pool


def expected(picks: dict[str, tuple[tuple[str, ...], str]]) -> dict[str, Any]:
    """The report's numbers, by hand: mean quality of the returned answers, dollars of every
    call, calls per prompt (rounded as the report rounds them)."""
    n = len(picks)
    q = sum(quality(r, chosen) for r, (_, chosen) in picks.items()) / n
    cost = sum((call_cost(r, m) for r, (called, _) in picks.items() for m in called),
               Decimal(0))
    calls = sum(len(called) for called, _ in picks.values()) / n
    return {"rows": n, "quality": round(q, 4), "cost": float(round(cost, 6)),
            "calls_per_prompt": round(calls, 3)}


def best_single() -> dict[str, Any]:
    """Highest mean quality, cheapest on ties: gpt-4o and claude are always right, and
    gpt-4o is the cheaper of the two."""
    cost = sum((call_cost(r, GPT4O) for r in SPEC), Decimal(0))
    return {"model": GPT4O, "quality": 1.0, "cost": float(round(cost, 6))}


def test_lowest_cost_is_always_the_cheapest_model(
        dataset: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pool = bench(capsys, *dataset, "--policy", "lowest-cost")
    want = expected({r: ((FLASH,), FLASH) for r in SPEC})
    assert {k: pool[k] for k in want} == want
    assert pool["best_single"] == best_single()
    assert pool["calls_per_prompt"] == 1.0 and pool["cost"] < pool["best_single"]["cost"]


def test_auto_ends_early_where_cheap_models_agree(
        dataset: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pool = bench(capsys, *dataset, "--policy", "auto")
    want = expected(AUTO)
    assert {k: pool[k] for k in want} == want
    assert pool["best_single"] == best_single()
    assert pool["quality"] == round(5 / 6, 4)  # agreeing is not being right: math-agree-2
    assert pool["cost"] < pool["best_single"]["cost"]


def test_a_cascade_from_a_yaml_config(dataset: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    agree = [{"agreement": {"min_votes": 2, "mode": "exact"}}]
    cfg = {"aliases": {
        "strong-only": [GPT4O],
        "two-cheap": {"policy": "cascade", "tiers": [
            {"models": [FLASH], "checks": agree}, {"models": [DEEPSEEK], "checks": agree},
            {"models": [SONNET]}]},
    }}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    pool = bench(capsys, *dataset, "--policy", str(path), "--route", "two-cheap")
    # flash and deepseek agree on math-agree-2 and general-agree; elsewhere claude answers
    picks = {r: ((FLASH, DEEPSEEK), DEEPSEEK) if r in ("math-agree-2", "general-agree")
             else ((FLASH, DEEPSEEK, SONNET), SONNET) for r in SPEC}
    want = expected(picks)
    assert {k: pool[k] for k in want} == want
    pool = bench(capsys, *dataset, "--policy", str(path), "--route", "strong-only")
    assert {k: pool[k] for k in want} == expected({r: ((GPT4O,), GPT4O) for r in SPEC})
    # two aliases and no --route: the bench cannot guess which one is meant
    code = cli_main(["bench", "routing", "--data", str(dataset[0]), "--prices",
                     str(dataset[1]), "--policy", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "--route" in err


def test_a_rescue_budget_returns_the_fallback_answer_on_long_answer_rows(
        dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agree = [{"agreement": {"min_votes": 2, "mode": "exact"}}]
    cfg = {"policy": "cascade", "tiers": [
        {"models": [FLASH], "checks": agree},
        {"models": [DEEPSEEK], "checks": agree, "fallback": True},
        {"models": [SONNET], "max_answer_usd": 0.0036}]}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    pool = bench(capsys, *dataset, "--policy", str(path))
    # claude's expected answer: the cheap answers' median length x $15/M, which grows with
    # the row's index (see output_tokens): rows 0 and 1 fit in $0.0036, rows 3 and 4 do not
    rows = list(SPEC)
    picks = {r: ((FLASH, DEEPSEEK), DEEPSEEK) if r in ("math-agree-2", "general-agree")
             else ((FLASH, DEEPSEEK, SONNET), SONNET) if rows.index(r) < 2
             else ((FLASH, DEEPSEEK), DEEPSEEK) for r in SPEC}
    want = expected(picks)
    assert {k: pool[k] for k in want} == want
    assert pool["cost"] < expected({r: ((FLASH, DEEPSEEK, SONNET), SONNET) for r in SPEC})["cost"]


def test_text_report_lists_the_pool(dataset: tuple[Path, Path],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["bench", "routing", "--data", str(dataset[0]), "--prices",
                     str(dataset[1]), "--policy", "lowest-cost"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "zeroeval" in out and GPT4O in out and "lowest-cost" in out
