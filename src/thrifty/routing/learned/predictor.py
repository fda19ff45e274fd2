"""Per-model quality regressors: multi-output ridge regression on standardised features, fit
in closed form (one SVD serves every model and every penalty), its penalty picked by k-fold
cross-validation with a seeded split, and a normalised-LMS step for live feedback. numpy only;
no I/O, no global randomness."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
Vector = npt.NDArray[np.float64]
Criterion = Literal["mse", "rank"]

DEFAULT_PENALTIES: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0)
MAX_UPDATE_RATE = 0.5


@dataclass(slots=True)
class RidgeHeads:
    """``k`` linear heads over one feature block: ``predict(X) = ((X - mean) / scale) @ weights
    + bias``. Raw outputs; the router clips qualities into [0, 1]."""

    mean: Vector
    scale: Vector
    weights: Matrix
    """shape (features, heads)"""
    bias: Vector
    penalty: float

    @classmethod
    def fit(cls, x: Matrix, y: Matrix, penalty: float) -> RidgeHeads:
        mean, scale = _standardiser(x)
        z = (x - mean) / scale
        y_mean = y.mean(axis=0)
        weights = _solve(z, y - y_mean, (penalty,))[0]
        return cls(mean, scale, weights, y_mean, penalty)

    def predict(self, x: Matrix) -> Matrix:
        z: Matrix = (x - self.mean) / self.scale
        return np.asarray(z @ self.weights + self.bias, dtype=np.float64)

    def nlms_step(self, x: Vector, head: int, target: float, rate: float) -> float:
        """Move head ``head``'s prediction at ``x`` exactly ``rate`` of the way to ``target``
        (normalised LMS on the standardised features plus the bias). With ``rate`` in (0, 0.5]
        a step never overshoots, and its weight change is at most ``rate * |error|``.
        Returns the error before the step."""
        if not 0.0 < rate <= MAX_UPDATE_RATE:
            raise ValueError(f"update rate must be in (0, {MAX_UPDATE_RATE}], got {rate}")
        z = (x - self.mean) / self.scale
        error = float(target - (z @ self.weights[:, head] + self.bias[head]))
        step = rate * error / (float(z @ z) + 1.0)
        self.weights[:, head] += step * z
        self.bias[head] += step
        return error


@dataclass(slots=True)
class ScoreHead:
    """One ridge head whose raw output is mapped through the empirical distribution of its
    training outputs, so a score is a percentile in [0, 1]: "needs the strong model more than
    this share of the training prompts". Percentiles average cleanly across feature blocks."""

    ridge: RidgeHeads
    quantiles: Vector
    """sorted raw outputs at evenly spaced probabilities 0..1"""

    @classmethod
    def fit(cls, x: Matrix, y: Vector, penalty: float, n_quantiles: int = 201) -> ScoreHead:
        ridge = RidgeHeads.fit(x, y[:, np.newaxis], penalty)
        raw = ridge.predict(x)[:, 0]
        return cls(ridge, np.quantile(raw, np.linspace(0.0, 1.0, n_quantiles)))

    def score(self, x: Matrix) -> Vector:
        raw = self.ridge.predict(x)[:, 0]
        probs = np.linspace(0.0, 1.0, len(self.quantiles))
        return np.asarray(np.interp(raw, self.quantiles, probs), dtype=np.float64)


def choose_penalty(
    x: Matrix,
    y: Matrix,
    *,
    penalties: Sequence[float] = DEFAULT_PENALTIES,
    folds: int = 5,
    seed: int = 0,
    criterion: Criterion = "mse",
) -> tuple[float, dict[float, float]]:
    """The penalty with the best k-fold loss (mean squared error over all heads, or one minus
    the Spearman correlation of the first head for ranking uses), and every penalty's loss."""
    n = x.shape[0]
    folds = max(2, min(folds, n))
    order = np.random.default_rng(seed).permutation(n)
    oof = np.zeros((len(penalties), *y.shape))
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        mean, scale = _standardiser(x[train])
        y_mean = y[train].mean(axis=0)
        weights = _solve((x[train] - mean) / scale, y[train] - y_mean, penalties)
        z_test = (x[test] - mean) / scale
        for i, w in enumerate(weights):
            oof[i][test] = z_test @ w + y_mean
    losses: dict[float, float] = {}
    for i, pen in enumerate(penalties):
        if criterion == "mse":
            losses[pen] = float(np.mean((oof[i] - y) ** 2))
        else:
            losses[pen] = 1.0 - spearman(oof[i][:, 0], y[:, 0])
    best = min(penalties, key=lambda p: (losses[p], -p))  # ties: the stronger penalty
    return best, losses


def spearman(a: Vector, b: Vector) -> float:
    """Rank correlation (ties broken by position; enough for model selection)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    ra = np.argsort(np.argsort(a, kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(b, kind="stable"), kind="stable").astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def _standardiser(x: Matrix) -> tuple[Vector, Vector]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature stays at zero instead of dividing by zero
    return mean, scale


def _solve(z: Matrix, y: Matrix, penalties: Sequence[float]) -> list[Matrix]:
    """Ridge weights for centred ``z`` and ``y``, one matrix per penalty, from one thin SVD."""
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    uty = u.T @ y
    return [vt.T @ ((s / (s * s + pen))[:, np.newaxis] * uty) for pen in penalties]
