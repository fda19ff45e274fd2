"""The learned router: per-model quality predicted from a prompt's features, and a choice among
the caller's candidates (cheapest above a quality floor, best quality minus lambda x cost, or
RouteLLM's strong/weak threshold). Pure at decision time: costs come in, nothing is read or
timed; the only state touched is a small cache of recent prompt features and ``update``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from thrifty.routing.learned.embedder import Embedder, load_embedder
from thrifty.routing.learned.features import FeatureKind, blocks_for, lexical_features
from thrifty.routing.learned.predictor import RidgeHeads, ScoreHead
from thrifty.routing.learned.store import read_router_dir, write_router_dir

Mode = Literal["floor", "lambda", "threshold"]
Matrix = npt.NDArray[np.float64]
Vector = npt.NDArray[np.float64]

DEFAULT_UPDATE_RATE = 0.05


@dataclass(frozen=True, slots=True)
class Choice:
    model: str
    predicted: dict[str, float]
    """predicted quality in [0, 1] of every candidate"""
    score: float | None
    """the mode's deciding number: the strong-win score, the chosen model's utility, or its
    predicted quality"""
    reason: str


@dataclass(slots=True)
class BlockModel:
    """The predictors over one feature block; blocks are averaged (an ensemble)."""

    quality: RidgeHeads
    score: ScoreHead | None = None


class LearnedRouter:
    """Built by ``thrifty router train`` (see ``train.train_router``); loaded with ``load``."""

    def __init__(
        self,
        *,
        models: Sequence[str],
        features: FeatureKind,
        blocks: Mapping[str, BlockModel],
        embedder: Embedder | None = None,
        strong: str | None = None,
        weak: str | None = None,
        threshold: float | None = None,
        quality_floor: float | None = None,
        lam: float | None = None,
        default_mode: Mode = "floor",
        update_rate: float = DEFAULT_UPDATE_RATE,
        info: Mapping[str, Any] | None = None,
        cache_size: int = 256,
    ) -> None:
        if set(blocks) != set(blocks_for(features)):
            raise ValueError(f"features '{features}' need blocks {blocks_for(features)}")
        if "embedding" in blocks and embedder is None:
            raise ValueError("embedding features need an embedder")
        self.models: tuple[str, ...] = tuple(models)
        self.features: FeatureKind = features
        self.blocks = dict(blocks)
        self.embedder = embedder
        self.strong, self.weak = strong, weak
        self.threshold, self.quality_floor = threshold, quality_floor
        self.lam = lam
        """calibrated lambda for ``choose(lam=router.lam)``; never applied implicitly"""
        self.default_mode: Mode = default_mode
        self.update_rate = update_rate
        self.info: dict[str, Any] = dict(info or {})
        self._index = {m: j for j, m in enumerate(self.models)}
        self._cache: OrderedDict[str, dict[str, Vector]] = OrderedDict()
        self._cache_size = cache_size

    # -- prediction ------------------------------------------------------------------------

    def features_of(self, prompt: str) -> dict[str, Vector]:
        """The prompt's feature vector per block; the last ``cache_size`` prompts are kept
        because the embedding dominates a decision's time and prompts repeat (retries,
        cascades asking twice)."""
        hit = self._cache.get(prompt)
        if hit is not None:
            self._cache.move_to_end(prompt)
            return hit
        out: dict[str, Vector] = {}
        for block in self.blocks:
            if block == "lexical":
                out[block] = lexical_features(prompt)
            else:
                assert self.embedder is not None
                out[block] = self.embedder.embed([prompt])[0]
        self._cache[prompt] = out
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def predict(self, prompt: str) -> dict[str, float]:
        x = self.features_of(prompt)
        row = self.predict_matrix({b: v[np.newaxis, :] for b, v in x.items()})
        return {m: float(row[0, j]) for j, m in enumerate(self.models)}

    def strong_win_score(self, prompt: str) -> float:
        """How much this prompt needs the strong model, as a percentile of the training
        prompts in [0, 1]; only for a router trained with a strong/weak pair."""
        x = self.features_of(prompt)
        return float(self.score_matrix({b: v[np.newaxis, :] for b, v in x.items()})[0])

    def predict_matrix(self, blocks: Mapping[str, Matrix]) -> Matrix:
        """Predicted quality for many prompts at once: rows x ``models``, clipped to [0, 1]."""
        preds = [np.clip(m.quality.predict(blocks[b]), 0.0, 1.0) for b, m in self.blocks.items()]
        return np.asarray(np.mean(preds, axis=0), dtype=np.float64)

    def score_matrix(self, blocks: Mapping[str, Matrix]) -> Vector:
        heads = [(b, m.score) for b, m in self.blocks.items() if m.score is not None]
        if not heads:
            raise ValueError("this router was trained without --strong/--weak; it has no "
                             "strong-win score (use floor or lambda mode)")
        return np.asarray(np.mean([h.score(blocks[b]) for b, h in heads], axis=0),
                          dtype=np.float64)

    # -- decision --------------------------------------------------------------------------

    def choose(
        self,
        prompt: str,
        candidates: Mapping[str, float],
        *,
        quality_floor: float | None = None,
        lam: float | None = None,
        threshold: float | None = None,
    ) -> Choice:
        """Pick one of ``candidates`` (model -> expected USD cost of this request). Give at
        most one of ``quality_floor`` / ``lam`` / ``threshold``; with none, the router's
        trained default mode and calibrated value apply."""
        unknown = [m for m in candidates if m not in self._index]
        if unknown or not candidates:
            raise ValueError(f"candidates must be non-empty and among {self.models}; "
                             f"unknown: {unknown}")
        given = [(k, v) for k, v in (("floor", quality_floor), ("lambda", lam),
                                     ("threshold", threshold)) if v is not None]
        if len(given) > 1:
            raise ValueError("give at most one of quality_floor, lam, threshold")
        mode, value = given[0] if given else self._default()
        if mode == "threshold":
            return self._by_threshold(prompt, candidates, value)
        all_pred = self.predict(prompt)
        pred = {m: all_pred[m] for m in candidates}
        if mode == "lambda":
            return _by_utility(pred, candidates, value)
        return _by_floor(pred, candidates, value)

    def _default(self) -> tuple[Mode, float]:
        value = {"threshold": self.threshold, "floor": self.quality_floor,
                 "lambda": self.lam}[self.default_mode]
        if value is None:
            raise ValueError(f"no calibrated value for default mode '{self.default_mode}'; "
                             "pass quality_floor, lam or threshold")
        return self.default_mode, value

    def _by_threshold(self, prompt: str, candidates: Mapping[str, float],
                      threshold: float) -> Choice:
        if self.strong is None or self.weak is None:
            raise ValueError("threshold mode needs a router trained with --strong/--weak")
        score = self.strong_win_score(prompt)
        all_pred = self.predict(prompt)
        pred = {m: all_pred[m] for m in candidates}
        present = [m for m in (self.strong, self.weak) if m in candidates]
        if len(present) == 1:  # the other was excluded upstream (limits, health): no choice
            return Choice(present[0], pred, score, f"only {present[0]} of the pair is eligible")
        if not present:
            raise ValueError(f"threshold mode needs {self.strong} or {self.weak} among the "
                             "candidates")
        pick = self.strong if score >= threshold else self.weak
        rel = ">=" if pick == self.strong else "<"
        return Choice(pick, pred, score, f"strong-win score {score:.3f} {rel} {threshold:.3f}")

    # -- feedback --------------------------------------------------------------------------

    def update(self, prompt: str, model: str, score: float) -> None:
        """Refine ``model``'s predictor from one observed quality (live feedback). Each
        feature block's head takes a normalised-LMS step that moves its prediction for this
        prompt ``update_rate`` (default 5%) of the way to ``score`` (clipped to [0, 1]):
        never past it, and by at most ``update_rate`` per call. Not thread-safe: callers
        serialise updates. The strong-win score is left as calibrated."""
        if model not in self._index:
            raise ValueError(f"unknown model '{model}'; this router knows {self.models}")
        target = min(1.0, max(0.0, float(score)))
        x = self.features_of(prompt)
        for block, bm in self.blocks.items():
            bm.quality.nlms_step(x[block], self._index[model], target, self.update_rate)

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        arrays: dict[str, Matrix] = {}
        for block, bm in self.blocks.items():
            _put_ridge(arrays, f"{block}.quality", bm.quality)
            if bm.score is not None:
                _put_ridge(arrays, f"{block}.score", bm.score.ridge)
                arrays[f"{block}.score.quantiles"] = bm.score.quantiles
        meta = {
            "models": list(self.models), "features": self.features,
            "embedder": self.embedder.name if self.embedder is not None else None,
            "strong": self.strong, "weak": self.weak, "threshold": self.threshold,
            "quality_floor": self.quality_floor, "lam": self.lam, "default_mode": self.default_mode,
            "update_rate": self.update_rate, "score_blocks": sorted(
                b for b, m in self.blocks.items() if m.score is not None),
            "info": self.info,
        }
        write_router_dir(Path(path), meta, arrays)

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embedder | None = None) -> LearnedRouter:
        """Read a router directory; an embedding router loads its embedder unless one is
        given (raising a ConfigError with the install command when it is missing)."""
        meta, arrays = read_router_dir(Path(path))
        features: FeatureKind = meta["features"]
        if "embedding" in blocks_for(features) and embedder is None:
            embedder = load_embedder(str(meta["embedder"]))
        blocks: dict[str, BlockModel] = {}
        for block in blocks_for(features):
            score = None
            if block in meta.get("score_blocks", []):
                score = ScoreHead(_get_ridge(arrays, f"{block}.score"),
                                  arrays[f"{block}.score.quantiles"])
            blocks[block] = BlockModel(_get_ridge(arrays, f"{block}.quality"), score)
        return cls(models=meta["models"], features=features, blocks=blocks, embedder=embedder,
                   strong=meta["strong"], weak=meta["weak"], threshold=meta["threshold"],
                   quality_floor=meta["quality_floor"], lam=meta.get("lam"),
                   default_mode=meta["default_mode"],
                   update_rate=float(meta["update_rate"]), info=meta.get("info", {}))


def _by_floor(pred: Mapping[str, float], cost: Mapping[str, float], floor: float) -> Choice:
    ok = [m for m in pred if pred[m] >= floor]
    if ok:
        pick = min(ok, key=lambda m: (cost[m], -pred[m], m))
        return Choice(pick, dict(pred), pred[pick],
                      f"cheapest with predicted quality {pred[pick]:.3f} >= floor {floor:.3f}")
    pick = max(pred, key=lambda m: (pred[m], -cost[m], m))
    return Choice(pick, dict(pred), pred[pick],
                  f"no candidate predicted >= floor {floor:.3f}; highest predicted")


def _by_utility(pred: Mapping[str, float], cost: Mapping[str, float], lam: float) -> Choice:
    utility = {m: pred[m] - lam * cost[m] for m in pred}
    pick = max(utility, key=lambda m: (utility[m], -cost[m], m))
    return Choice(pick, dict(pred), utility[pick],
                  f"best predicted quality - {lam:g} x cost ({utility[pick]:.4f})")


def _put_ridge(arrays: dict[str, Matrix], prefix: str, r: RidgeHeads) -> None:
    arrays[f"{prefix}.mean"], arrays[f"{prefix}.scale"] = r.mean, r.scale
    arrays[f"{prefix}.weights"], arrays[f"{prefix}.bias"] = r.weights, r.bias
    arrays[f"{prefix}.penalty"] = np.array([r.penalty])


def _get_ridge(arrays: Mapping[str, Matrix], prefix: str) -> RidgeHeads:
    return RidgeHeads(arrays[f"{prefix}.mean"], arrays[f"{prefix}.scale"],
                      arrays[f"{prefix}.weights"].copy(), arrays[f"{prefix}.bias"].copy(),
                      float(arrays[f"{prefix}.penalty"][0]))
