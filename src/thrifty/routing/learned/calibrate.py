"""Offline calibration and evaluation of a learned router: the strong/weak threshold for a
target share of strong calls (RouteLLM's quantile rule), the quality floor for a target mean
quality, and APGR (average performance gap recovered) defined exactly as the routing dataset's
eval_baselines.py defines it, so figures agree. Pure: rows, prices and scores come in."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from thrifty.routing.learned.dataset import Price, Row, cost_matrix

Matrix = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]


class StrongScorer(Protocol):
    def strong_win_score(self, prompt: str) -> float: ...


@dataclass(frozen=True, slots=True)
class CurvePoint:
    strong_share: float
    """fraction of prompts sent to the strong model"""
    pgr: float
    """(Q(router) - Q(weak)) / (Q(strong) - Q(weak)) at that share"""
    cost: float | None = None
    """total USD of the routed prompts at that share, when prices were given"""


def calibrate_threshold(scores: Sequence[float], target_strong_share: float) -> float:
    """The threshold at which ``score >= threshold`` sends ``round(share * n)`` of these
    scores to the strong model: the k-th highest score (exact for distinct scores; RouteLLM
    takes the same quantile with interpolation). Share 0 gives a threshold above every score."""
    if not 0.0 <= target_strong_share <= 1.0:
        raise ValueError(f"target strong share must be in [0, 1], got {target_strong_share}")
    if not scores:
        raise ValueError("no scores to calibrate on")
    ranked = sorted(scores, reverse=True)
    k = round(target_strong_share * len(ranked))
    if k == 0:
        return math.nextafter(ranked[0], math.inf)
    return ranked[k - 1]


def floor_choices(predicted: Matrix, cost: Matrix, floor: float) -> Indices:
    """Per row, the cheapest column whose predicted quality reaches ``floor``; where none
    does, the column with the highest prediction (the router's floor mode, vectorised)."""
    eligible = predicted >= floor
    cheapest = np.argmin(np.where(eligible, cost, np.inf), axis=1)
    best = np.argmax(predicted, axis=1)
    return np.asarray(np.where(eligible.any(axis=1), cheapest, best), dtype=np.intp)


def calibrate_floor(predicted: Matrix, quality: Matrix, cost: Matrix,
                    target_mean_quality: float) -> float:
    """The quality floor, among the predictions' own values, that reaches
    ``target_mean_quality`` (realised on these rows) at the least total cost; when no floor
    reaches it, the floor with the highest realised quality."""
    candidates = np.unique(np.quantile(predicted, np.linspace(0.0, 1.0, 201)))
    best_hit: tuple[float, float] | None = None  # (cost, floor)
    best_miss: tuple[float, float, float] = (-math.inf, math.inf, 0.0)  # (quality, -cost, floor)
    rows = np.arange(predicted.shape[0])
    for floor in candidates:
        pick = floor_choices(predicted, cost, float(floor))
        q = float(quality[rows, pick].mean())
        c = float(cost[rows, pick].sum())
        if q >= target_mean_quality - 1e-12:
            if best_hit is None or c < best_hit[0]:
                best_hit = (c, float(floor))
        elif (q, -c) > best_miss[:2]:
            best_miss = (q, -c, float(floor))
    return best_hit[1] if best_hit is not None else best_miss[2]


def utility_choices(predicted: Matrix, cost: Matrix, lam: float) -> Indices:
    """Per row, the column maximising predicted quality minus ``lam`` x cost (lambda mode;
    ties go to the first column, where the router breaks them by cost)."""
    return np.asarray(np.argmax(predicted - lam * cost, axis=1), dtype=np.intp)


def calibrate_lambda(predicted: Matrix, quality: Matrix, cost: Matrix,
                     target_mean_quality: float) -> float:
    """The lambda (quality points per USD) of least realised cost on these rows whose mean
    quality reaches ``target_mean_quality``, from a log grid 1e-2..1e7; when none reaches
    it, the smallest lambda (the most quality-seeking)."""
    rows = np.arange(predicted.shape[0])
    best: tuple[float, float] | None = None  # (cost, lam)
    grid = np.geomspace(1e-2, 1e7, 181)
    for lam in grid:
        pick = utility_choices(predicted, cost, float(lam))
        if float(quality[rows, pick].mean()) >= target_mean_quality - 1e-12:
            c = float(cost[rows, pick].sum())
            if best is None or c < best[0]:
                best = (c, float(lam))
    return best[1] if best is not None else float(grid[0])


def apgr_from_scores(scores: Sequence[float], q_strong: Sequence[float],
                     q_weak: Sequence[float]) -> tuple[float, list[CurvePoint]]:
    """APGR as eval_baselines.py computes it: send the top-k prompts by score to the strong
    model for k = 0..n (ties kept in row order), PGR at each share, trapezoid area."""
    n = len(scores)
    if n == 0 or len(q_strong) != n or len(q_weak) != n:
        raise ValueError("scores, q_strong and q_weak must be non-empty and of equal length")
    mean_w, mean_s = sum(q_weak) / n, sum(q_strong) / n
    gap = mean_s - mean_w
    order = sorted(range(n), key=lambda i: -scores[i])
    total = sum(q_weak)
    curve = [CurvePoint(0.0, 0.0 if gap else math.nan)]
    for k, i in enumerate(order, 1):
        total += q_strong[i] - q_weak[i]
        curve.append(CurvePoint(k / n, (total / n - mean_w) / gap if gap else math.nan))
    return _area(curve), curve


def apgr(rows: Sequence[Row], router: StrongScorer, strong: str, weak: str,
         prices: Mapping[str, Price]) -> tuple[float, list[CurvePoint]]:
    """The router's APGR on these rows, with the total cost at every share of strong calls."""
    scores = [router.strong_win_score(r.prompt) for r in rows]
    value, curve = apgr_from_scores(scores, [r.quality[strong] for r in rows],
                                    [r.quality[weak] for r in rows])
    cost = cost_matrix(rows, (weak, strong), prices)
    order = sorted(range(len(rows)), key=lambda i: -scores[i])
    running = float(cost[:, 0].sum())
    costed = [CurvePoint(curve[0].strong_share, curve[0].pgr, running)]
    for point, i in zip(curve[1:], order, strict=True):
        running += float(cost[i, 1] - cost[i, 0])
        costed.append(CurvePoint(point.strong_share, point.pgr, running))
    return value, costed


def _area(curve: Sequence[CurvePoint]) -> float:
    area = 0.0
    for a, b in itertools.pairwise(curve):
        area += (b.strong_share - a.strong_share) * (a.pgr + b.pgr) / 2
    return area
