"""A shipped fake of the routing dataset: math/code-like rows in the dataset's JSONL schema
whose qualities depend on the prompt's kind (easy arithmetic, code, LaTeX proofs), for tests,
docs and demos. Seeded ``random.Random``; no I/O. Prices for its three models included."""

from __future__ import annotations

import random
from typing import Any

MODELS = ("small-model", "mid-model", "big-model")
PRICES: dict[str, dict[str, float]] = {
    "small-model": {"input_per_mtok": 0.1, "output_per_mtok": 0.2},
    "mid-model": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
    "big-model": {"input_per_mtok": 5.0, "output_per_mtok": 15.0},
}
# P(correct) per prompt kind and model: small only handles arithmetic
ACCURACY: dict[str, dict[str, float]] = {
    "arithmetic": {"small-model": 0.95, "mid-model": 0.97, "big-model": 0.98},
    "code": {"small-model": 0.15, "mid-model": 0.8, "big-model": 0.95},
    "proof": {"small-model": 0.05, "mid-model": 0.3, "big-model": 0.9},
}


def _prompt(kind: str, rng: random.Random) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    if kind == "arithmetic":
        return f"Tom has {a} apples and buys {b} more. How many apples does he have?"
    if kind == "code":
        return (f"```python\ndef f(x):\n    return x * {a} + {b}\n```\n"
                f"What does assert f({b}) == ?? evaluate to; give the value of f({b}).")
    return (f"Let $n = {a}$. Prove that $\\frac{{n^2 + {b}}}{{n}}$ is not an integer "
            f"for every $n > {b}$, and find $\\sqrt{{n^2}}$.")


def synthetic_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows ``{id, source, prompt, prompt_tokens, models: {m: {quality,
    output_tokens}}}``, kinds drawn uniformly, quality 0/1 drawn from ``ACCURACY``."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        kind = rng.choice(sorted(ACCURACY))
        prompt = _prompt(kind, rng)
        models = {m: {"quality": float(rng.random() < ACCURACY[kind][m]),
                      "output_tokens": rng.randint(50, 400)} for m in MODELS}
        rows.append({"id": f"zeroeval_synth-{i}", "source": f"zeroeval_synth_{kind}",
                     "prompt": prompt, "prompt_tokens": max(1, len(prompt) // 4),
                     "models": models})
    return rows
