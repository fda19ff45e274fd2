"""Training a LearnedRouter from routing-dataset rows: features computed once, per-model ridge
heads with cross-validated penalties, an optional strong/weak score head, calibration of the
threshold and quality floor, and honest figures on a seeded hold-out split or k-fold CV.
Reads no files (the CLI does); randomness only from the seed given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from thrifty.routing.learned.calibrate import (
    apgr_from_scores,
    calibrate_floor,
    calibrate_lambda,
    calibrate_threshold,
    floor_choices,
    utility_choices,
)
from thrifty.routing.learned.dataset import Price, Row, cost_matrix, quality_matrix
from thrifty.routing.learned.embedder import Embedder
from thrifty.routing.learned.features import FeatureKind, blocks_for, lexical_matrix
from thrifty.routing.learned.predictor import (
    DEFAULT_PENALTIES,
    RidgeHeads,
    ScoreHead,
    choose_penalty,
    spearman,
)
from thrifty.routing.learned.router import BlockModel, LearnedRouter, Mode

Matrix = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class TrainSpec:
    features: FeatureKind = "lexical"
    strong: str | None = None
    weak: str | None = None
    holdout: float = 0.25
    seed: int = 0
    target_strong_share: float = 0.5
    quality_floor: float | None = None
    """a fixed floor; when None the floor is calibrated to ``target_quality``"""
    target_quality: float = 0.95
    """floor calibration target, as a fraction of the best single model's mean quality"""
    penalties: tuple[float, ...] = DEFAULT_PENALTIES
    folds: int = 5


@dataclass(frozen=True, slots=True)
class Prepared:
    """Rows with everything training needs, computed once: features per block, quality and
    cost per model."""

    rows: Sequence[Row]
    models: tuple[str, ...]
    blocks: Mapping[str, Matrix]
    quality: Matrix
    cost: Matrix

    def subset(self, idx: Indices) -> Prepared:
        return Prepared([self.rows[i] for i in idx], self.models,
                        {b: x[idx] for b, x in self.blocks.items()},
                        self.quality[idx], self.cost[idx])


@dataclass(slots=True)
class TrainResult:
    router: LearnedRouter
    holdout: dict[str, Any]
    n_train: int
    n_holdout: int
    summary: dict[str, Any] = field(default_factory=dict)


def prepare(rows: Sequence[Row], models: Sequence[str], prices: Mapping[str, Price],
            features: FeatureKind, embedder: Embedder | None) -> Prepared:
    prompts = [r.prompt for r in rows]
    blocks: dict[str, Matrix] = {}
    for block in blocks_for(features):
        if block == "lexical":
            blocks[block] = lexical_matrix(prompts)
        else:
            if embedder is None:
                raise ValueError("embedding features need an embedder")
            blocks[block] = embedder.embed(prompts)
    return Prepared(rows, tuple(models), blocks, quality_matrix(rows, models),
                    cost_matrix(rows, models, prices))


def field_gap(quality: Matrix, models: Sequence[str], strong: str) -> Matrix:
    """The strong/weak score head's target: the strong model's quality minus the mean of the
    other models'. Less noisy than strong minus weak alone (the models' per-prompt qualities
    correlate), and it cross-validated better on the chat and math/code pools."""
    j = list(models).index(strong)
    others = [k for k in range(len(models)) if k != j]
    return np.asarray(quality[:, j] - quality[:, others].mean(axis=1), dtype=np.float64)


def fit_router(data: Prepared, spec: TrainSpec, embedder: Embedder | None) -> LearnedRouter:
    """Fit every head on all of ``data``; calibrate the threshold on its scores, and the floor
    and lambda on out-of-fold predictions (in-sample ones are optimistic: too low a floor)."""
    pair = _pair(spec, data.models)
    blocks, penalties = _fit_heads(data, spec, pair, None)
    # with no pair and no fixed floor, lambda mode: on the math/code pool it lies above the
    # single-model frontier where one absolute floor lies below it (hard prompts that no model
    # is predicted to pass fall through to the priciest well-predicted model)
    mode: Mode = ("floor" if spec.quality_floor is not None
                  else "threshold" if pair is not None else "lambda")
    router = LearnedRouter(models=data.models, features=spec.features, blocks=blocks,
                           embedder=embedder, strong=pair[0] if pair else None,
                           weak=pair[1] if pair else None, default_mode=mode,
                           info={"penalties": penalties})
    if pair is not None:
        router.threshold = calibrate_threshold(
            router.score_matrix(data.blocks).tolist(), spec.target_strong_share)
    target = spec.target_quality * float(data.quality.mean(axis=0).max())
    oof = _out_of_fold_quality(data, spec, penalties)
    router.lam = calibrate_lambda(oof, data.quality, data.cost, target)
    router.quality_floor = spec.quality_floor
    if router.quality_floor is None:
        router.quality_floor = calibrate_floor(oof, data.quality, data.cost, target)
    return router


def _fit_heads(data: Prepared, spec: TrainSpec, pair: tuple[str, str] | None,
               fixed: Mapping[str, Mapping[str, float]] | None,
               ) -> tuple[dict[str, BlockModel], dict[str, dict[str, float]]]:
    """Heads per feature block, with penalties chosen by k-fold CV unless ``fixed``."""
    blocks: dict[str, BlockModel] = {}
    penalties: dict[str, dict[str, float]] = {}
    for block, x in data.blocks.items():
        pen = fixed[block]["quality"] if fixed else choose_penalty(
            x, data.quality, penalties=spec.penalties, folds=spec.folds, seed=spec.seed)[0]
        bm = BlockModel(RidgeHeads.fit(x, data.quality, pen))
        penalties[block] = {"quality": pen}
        if pair is not None:
            target = field_gap(data.quality, data.models, pair[0])
            spen = fixed[block]["score"] if fixed else choose_penalty(
                x, target[:, np.newaxis], penalties=spec.penalties, folds=spec.folds,
                seed=spec.seed, criterion="rank")[0]
            bm.score = ScoreHead.fit(x, target, spen)
            penalties[block]["score"] = spen
        blocks[block] = bm
    return blocks, penalties


def _out_of_fold_quality(data: Prepared, spec: TrainSpec,
                         penalties: Mapping[str, Mapping[str, float]]) -> Matrix:
    n = len(data.rows)
    folds = max(2, min(spec.folds, n))
    order = np.random.default_rng(spec.seed + 1).permutation(n)
    out = np.zeros_like(data.quality)
    for f in range(folds):
        test = order[f::folds]
        blocks, _ = _fit_heads(data.subset(np.setdiff1d(order, test)), spec, None, penalties)
        preds = [np.clip(bm.quality.predict(data.blocks[b][test]), 0.0, 1.0)
                 for b, bm in blocks.items()]
        out[test] = np.mean(preds, axis=0)
    return out


def evaluate(router: LearnedRouter, data: Prepared, train_mean: Matrix) -> dict[str, Any]:
    """Figures of a fitted router on rows it did not see: per-model fit against predicting the
    training mean, floor mode against the best single model, and (with a pair) APGR."""
    pred = router.predict_matrix(data.blocks)
    per_model = {m: {"mae": float(np.abs(pred[:, j] - data.quality[:, j]).mean()),
                     "mae_const": float(np.abs(train_mean[j] - data.quality[:, j]).mean()),
                     "spearman": spearman(pred[:, j], data.quality[:, j])}
                 for j, m in enumerate(data.models)}
    out: dict[str, Any] = {"n": len(data.rows), "per_model": per_model,
                           "policies": _policy_figures(router, data, pred)}
    if router.strong is not None and router.weak is not None:
        out["strong_weak"] = _pair_figures(router, data)
    return out


def run_training(data: Prepared, spec: TrainSpec, embedder: Embedder | None) -> TrainResult:
    """Fit on a seeded ``1 - holdout`` share, report on the rest, then refit the router that
    is returned on every row with the same settings (its calibration uses every row)."""
    n = len(data.rows)
    order = np.random.default_rng(spec.seed).permutation(n)
    n_hold = round(spec.holdout * n) if 0 < spec.holdout < 1 else 0
    held: dict[str, Any] = {}
    if n_hold >= 2 and n - n_hold >= 2:
        train, test = data.subset(order[n_hold:]), data.subset(order[:n_hold])
        held = evaluate(fit_router(train, spec, embedder), test, train.quality.mean(axis=0))
    router = fit_router(data, spec, embedder)
    router.info.update({"n_rows": n, "holdout": held, "seed": spec.seed})
    return TrainResult(router, held, n - n_hold, n_hold if held else 0)


def cross_validate(data: Prepared, spec: TrainSpec, embedder: Embedder | None,
                   k: int = 5) -> dict[str, Any]:
    """k-fold CV with a seeded split: APGR of the pooled out-of-fold scores (each row scored
    by the fold that did not see it) and the mean per-fold APGR; floor and lambda modes
    pooled, each fold using its own calibration."""
    n = len(data.rows)
    order = np.random.default_rng(spec.seed).permutation(n)
    scores = np.zeros(n)
    picks = np.zeros(n, dtype=np.intp)
    lam_picks = np.zeros(n, dtype=np.intp)
    fold_apgr: list[float] = []
    for f in range(k):
        test_idx = order[f::k]
        train = data.subset(np.setdiff1d(order, test_idx))
        test = data.subset(test_idx)
        router = fit_router(train, replace(spec, holdout=0.0), embedder)
        assert router.quality_floor is not None and router.lam is not None
        pred = router.predict_matrix(test.blocks)
        picks[test_idx] = floor_choices(pred, test.cost, router.quality_floor)
        lam_picks[test_idx] = utility_choices(pred, test.cost, router.lam)
        if router.strong is not None and router.weak is not None:
            s = router.score_matrix(test.blocks)
            scores[test_idx] = s
            fold_apgr.append(_apgr_on(s, test, router.strong, router.weak))
    rows = np.arange(n)
    out: dict[str, Any] = {"k": k}
    for mode, chosen in (("floor", picks), ("lambda", lam_picks)):
        out[mode] = {"mean_quality": float(data.quality[rows, chosen].mean()),
                     "total_cost": float(data.cost[rows, chosen].sum())}
    pair = _pair(spec, data.models)
    if pair is not None:
        out["apgr_pooled"] = _apgr_on(scores, data, *pair)
        out["apgr_fold_mean"] = float(np.mean(fold_apgr))
    return out


def repeated_cross_validate(data: Prepared, spec: TrainSpec, embedder: Embedder | None,
                            k: int = 5, seeds: int = 5) -> dict[str, Any]:
    """``cross_validate`` with seeds ``spec.seed`` .. ``spec.seed + seeds - 1`` (fold split and
    inner penalty folds both change). On the 322-row chat pool one split's APGR moves by about
    +-0.003 from the split alone, as much as most modelling changes: compare means."""
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    runs = [cross_validate(data, replace(spec, seed=spec.seed + i), embedder, k)
            for i in range(seeds)]
    out: dict[str, Any] = {"k": k, "seeds": seeds, "runs": runs}
    for mode in ("floor", "lambda"):
        out[mode] = {key: float(np.mean([r[mode][key] for r in runs]))
                     for key in ("mean_quality", "total_cost")}
    if "apgr_pooled" in runs[0]:
        pooled = np.array([r["apgr_pooled"] for r in runs])
        out.update(apgr_pooled=float(pooled.mean()), apgr_pooled_sd=float(pooled.std()),
                   apgr_pooled_min=float(pooled.min()), apgr_pooled_max=float(pooled.max()),
                   apgr_fold_mean=float(np.mean([r["apgr_fold_mean"] for r in runs])))
    return out


def _pair(spec: TrainSpec, models: Sequence[str]) -> tuple[str, str] | None:
    if spec.strong is None and spec.weak is None:
        return None
    if spec.strong is None or spec.weak is None or spec.strong == spec.weak:
        raise ValueError("give both --strong and --weak, two different models")
    for m in (spec.strong, spec.weak):
        if m not in models:
            raise ValueError(f"'{m}' is not in this pool's models: {', '.join(models)}")
    return spec.strong, spec.weak


def _apgr_on(scores: Matrix, data: Prepared, strong: str, weak: str) -> float:
    js, jw = data.models.index(strong), data.models.index(weak)
    value, _ = apgr_from_scores(scores.tolist(), data.quality[:, js].tolist(),
                                data.quality[:, jw].tolist())
    return value


def _policy_figures(router: LearnedRouter, data: Prepared, pred: Matrix) -> dict[str, Any]:
    """Floor and lambda mode at their calibrated values, each next to the best single model
    affordable at the same total cost (the single-model frontier) and the best overall."""
    assert router.quality_floor is not None and router.lam is not None
    rows = np.arange(len(data.rows))
    means, totals = data.quality.mean(axis=0), data.cost.sum(axis=0)
    best = int(np.argmax(means))
    out: dict[str, Any] = {"best_single": {"model": data.models[best],
                                           "mean_quality": float(means[best]),
                                           "total_cost": float(totals[best])}}
    for mode, value, pick in (
            ("floor", router.quality_floor,
             floor_choices(pred, data.cost, router.quality_floor)),
            ("lambda", router.lam, utility_choices(pred, data.cost, router.lam))):
        cost = float(data.cost[rows, pick].sum())
        affordable = [j for j in range(len(data.models)) if totals[j] <= cost + 1e-12]
        single = max(affordable, key=lambda j: means[j]) if affordable else None
        out[mode] = {"value": value, "mean_quality": float(data.quality[rows, pick].mean()),
                     "total_cost": cost,
                     "single_at_cost": None if single is None else {
                         "model": data.models[single], "mean_quality": float(means[single]),
                         "total_cost": float(totals[single])}}
    return out


def _pair_figures(router: LearnedRouter, data: Prepared) -> dict[str, Any]:
    assert router.strong is not None and router.weak is not None
    assert router.threshold is not None
    scores = router.score_matrix(data.blocks)
    js, jw = data.models.index(router.strong), data.models.index(router.weak)
    length = np.array([float(r.prompt_tokens) for r in data.rows])
    to_strong = scores >= router.threshold
    pick = np.where(to_strong, js, jw)
    rows = np.arange(len(data.rows))
    return {"strong": router.strong, "weak": router.weak,
            "apgr": _apgr_on(scores, data, router.strong, router.weak),
            "apgr_prompt_length": _apgr_on(length, data, router.strong, router.weak),
            "apgr_oracle": _apgr_on(data.quality[:, js] - data.quality[:, jw], data,
                                    router.strong, router.weak),
            "threshold": router.threshold, "strong_share": float(to_strong.mean()),
            "mean_quality": float(data.quality[rows, pick].mean()),
            "total_cost": float(data.cost[rows, pick].sum())}
