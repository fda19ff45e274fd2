"""The routing dataset format (one JSON object per line: id, source, prompt, prompt_tokens,
models: {model: {quality, output_tokens, answer?}}) and its price file ({model:
{input_per_mtok, output_per_mtok}}), read into typed rows and grouped into pools: the rows
that share a model set. A policy under replay never sees ``quality``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson

from thrifty.errors import ConfigError
from thrifty.pricing.price import Price


@dataclass(frozen=True, slots=True)
class Recorded:
    quality: float
    output_tokens: int
    answer: str | None


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    source: str
    prompt: str
    prompt_tokens: int
    models: Mapping[str, Recorded]


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    models: tuple[str, ...]
    rows: tuple[Row, ...]


def read_rows(path: Path) -> list[Row]:
    rows = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = orjson.loads(line)
                models = {m: Recorded(float(v["quality"]), int(v["output_tokens"]),
                                      v.get("answer")) for m, v in raw["models"].items()}
                rows.append(Row(str(raw["id"]), str(raw["source"]), str(raw["prompt"]),
                                int(raw["prompt_tokens"]), models))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{path}:{n}: not a routing row ({exc})") from None
    if not rows:
        raise ConfigError(f"{path}: no rows")
    return rows


def read_prices(path: Path) -> dict[str, Price]:
    try:
        raw = orjson.loads(path.read_bytes())
        return {m: Price.of(Decimal(str(v["input_per_mtok"])), Decimal(str(v["output_per_mtok"])))
                for m, v in raw.items()}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a price file ({exc})") from None


def pools(rows: Iterable[Row]) -> list[Pool]:
    groups: dict[tuple[str, ...], list[Row]] = {}
    for r in rows:
        groups.setdefault(tuple(sorted(r.models)), []).append(r)
    out = []
    for models, members in groups.items():
        sources = sorted({r.source for r in members})
        name = _common_stem(sources)
        out.append(Pool(name, models, tuple(members)))
    return sorted(out, key=lambda p: p.name)


def _common_stem(sources: Sequence[str]) -> str:
    """``zeroeval_gsm8k`` + ``zeroeval_math_l5`` -> ``zeroeval``: the shared ``_`` parts."""
    parts = [s.split("_") for s in sources]
    shared = []
    for words in zip(*parts, strict=False):
        if len(set(words)) != 1:
            break
        shared.append(words[0])
    return "_".join(shared) or "+".join(sources)


def call_cost(row: Row, model: str, prices: Mapping[str, Price]) -> Decimal:
    p = prices[model]
    rec = row.models[model]
    return (row.prompt_tokens * p.input + rec.output_tokens * p.output) / Decimal(1_000_000)


def best_single(pool: Pool, prices: Mapping[str, Price]) -> tuple[str, float, Decimal]:
    """The model with the highest mean quality on the pool (cheapest on ties)."""
    best: tuple[float, Decimal, str] | None = None
    n = len(pool.rows)
    for m in pool.models:
        q = sum(r.models[m].quality for r in pool.rows) / n
        c = sum((call_cost(r, m, prices) for r in pool.rows), Decimal(0))
        if best is None or (q, -c) > (best[0], -best[1]):
            best = (q, c, m)
    assert best is not None
    return best[2], best[0], best[1]


def split(rows: Sequence[Row], holdout: float, seed: int) -> tuple[list[Row], list[Row]]:
    """A deterministic train / held-out split by row id (stable across files and runs)."""
    import hashlib

    train: list[Row] = []
    held: list[Row] = []
    for r in rows:
        h = int.from_bytes(hashlib.sha256(f"{seed}:{r.id}".encode()).digest()[:8], "big")
        (held if h / 2**64 < holdout else train).append(r)
    return train, held
