"""The routing dataset as training sees it: rows (one prompt, every model's recorded quality and
output length), pools of rows sharing one model set, list prices, and the per-row cost and
quality matrices. File reading lives here and only here; the router never sees ``quality``."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import orjson

from thrifty.errors import ConfigError

PoolName = Literal["zeroeval", "alpaca_eval", "auto"]
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    source: str
    prompt: str
    prompt_tokens: int
    quality: Mapping[str, float]
    output_tokens: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float


def load_rows(path: Path) -> list[Row]:
    rows: list[Row] = []
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                raw = orjson.loads(line)
                models = raw["models"]
                rows.append(Row(
                    id=str(raw["id"]), source=str(raw["source"]), prompt=str(raw["prompt"]),
                    prompt_tokens=int(raw["prompt_tokens"]),
                    quality={m: float(v["quality"]) for m, v in models.items()},
                    output_tokens={m: int(v["output_tokens"]) for m, v in models.items()}))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{path}:{n}: not a routing dataset row ({exc!r}); each "
                                  "line needs id, source, prompt, prompt_tokens and models "
                                  "{model: {quality, output_tokens}}") from exc
    if not rows:
        raise ConfigError(f"{path}: no rows")
    return rows


def load_prices(path: Path) -> dict[str, Price]:
    try:
        raw = orjson.loads(path.read_bytes())
        return {m: Price(float(p["input_per_mtok"]), float(p["output_per_mtok"]))
                for m, p in raw.items()}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a price file ({exc!r}); expected "
                          "{model: {input_per_mtok, output_per_mtok}}") from exc


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pools(rows: Sequence[Row]) -> dict[tuple[str, ...], list[Row]]:
    """Rows grouped by their exact model set, as eval_baselines.py groups them."""
    out: dict[tuple[str, ...], list[Row]] = defaultdict(list)
    for r in rows:
        out[tuple(sorted(r.quality))].append(r)
    return dict(out)


def select_pool(rows: Sequence[Row], pool: PoolName) -> tuple[tuple[str, ...], list[Row]]:
    """The model set and rows of one pool: ``zeroeval`` / ``alpaca_eval`` by the rows' source
    prefix, ``auto`` the largest pool."""
    groups = pools(rows)
    if pool == "auto":
        return max(groups.items(), key=lambda kv: (len(kv[1]), kv[0]))
    for models, members in groups.items():
        if all(r.source.startswith(pool) for r in members):
            return models, members
    found = sorted({r.source for r in rows})
    raise ConfigError(f"no pool of '{pool}' rows in the data (sources: {', '.join(found)}); "
                      "use --pool auto")


def quality_matrix(rows: Sequence[Row], models: Sequence[str]) -> Matrix:
    return np.array([[r.quality[m] for m in models] for r in rows], dtype=np.float64)


def cost_matrix(rows: Sequence[Row], models: Sequence[str], prices: Mapping[str, Price]) -> Matrix:
    """USD per row and model: prompt tokens at the input price plus the recorded output
    tokens at the output price (floats: offline evaluation, not accounting)."""
    missing = [m for m in models if m not in prices]
    if missing:
        raise ConfigError(f"no price for {', '.join(missing)} in the price file; add "
                          "{input_per_mtok, output_per_mtok} for each")
    return np.array([[(r.prompt_tokens * prices[m].input_per_mtok
                       + r.output_tokens[m] * prices[m].output_per_mtok) / 1e6 for m in models]
                     for r in rows], dtype=np.float64)
