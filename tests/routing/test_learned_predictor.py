"""Ridge heads: fit a synthetic dataset where quality depends on one feature, pick a penalty by
seeded CV, map scores to percentiles, and take bounded normalised-LMS steps."""

from __future__ import annotations

import numpy as np
import pytest

from thrifty.routing.learned.predictor import (
    RidgeHeads,
    ScoreHead,
    choose_penalty,
    spearman,
)


def synthetic(n: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    # model 0 gets better with feature 2, model 1 worse; both noisy, in [0, 1]
    y0 = np.clip(0.5 + 0.2 * x[:, 2] + rng.normal(scale=0.05, size=n), 0, 1)
    y1 = np.clip(0.5 - 0.2 * x[:, 2] + rng.normal(scale=0.05, size=n), 0, 1)
    return x, np.column_stack([y0, y1])


def test_fit_recovers_the_dependence_on_one_feature() -> None:
    x, y = synthetic()
    heads = RidgeHeads.fit(x[:300], y[:300], penalty=1.0)
    pred = heads.predict(x[300:])
    assert pred.shape == (100, 2)
    assert spearman(pred[:, 0], y[300:, 0]) > 0.9
    assert spearman(pred[:, 1], y[300:, 1]) > 0.9
    # the weight on feature 2 dominates and has the right sign per model
    assert np.argmax(np.abs(heads.weights[:, 0])) == 2
    assert heads.weights[2, 0] > 0 > heads.weights[2, 1]
    assert np.abs(pred - y[300:]).mean() < 0.08


def test_fit_is_deterministic_and_handles_constant_features() -> None:
    x, y = synthetic()
    x[:, 4] = 3.0  # a constant column must not divide by zero
    a, b = RidgeHeads.fit(x, y, 10.0), RidgeHeads.fit(x, y, 10.0)
    assert np.array_equal(a.weights, b.weights)
    assert np.isfinite(a.weights).all()
    assert a.weights[4, 0] == 0.0


def test_choose_penalty_prefers_small_penalty_when_signal_is_strong() -> None:
    x, y = synthetic()
    best, losses = choose_penalty(x, y, penalties=(0.1, 1e6), folds=4, seed=0)
    assert best == 0.1
    assert losses[0.1] < losses[1e6]
    again, _ = choose_penalty(x, y, penalties=(0.1, 1e6), folds=4, seed=0)
    assert again == best


def test_choose_penalty_prefers_large_penalty_on_pure_noise() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 40)), rng.normal(size=(60, 1))
    best, _ = choose_penalty(x, y, penalties=(1e-3, 1e4), folds=5, seed=0)
    assert best == 1e4


def test_score_head_gives_monotone_percentiles() -> None:
    x, y = synthetic()
    head = ScoreHead.fit(x, y[:, 0], penalty=1.0)
    s = head.score(x)
    assert s.min() >= 0.0 and s.max() <= 1.0
    assert abs(float(np.median(s)) - 0.5) < 0.02  # percentiles of its own training outputs
    raw = head.ridge.predict(x)[:, 0]
    order = np.argsort(raw)
    assert np.all(np.diff(s[order]) >= -1e-12)


def test_nlms_step_moves_exactly_rate_toward_target_and_never_past() -> None:
    x, y = synthetic()
    heads = RidgeHeads.fit(x, y, 1.0)
    p = x[7]
    before = heads.predict(p[np.newaxis])[0]
    err = heads.nlms_step(p, 0, 1.0, 0.1)
    after = heads.predict(p[np.newaxis])[0]
    assert err == pytest.approx(1.0 - before[0])
    assert after[0] - before[0] == pytest.approx(0.1 * (1.0 - before[0]))
    assert after[1] == pytest.approx(before[1])  # the other model's head is untouched
    for _ in range(200):  # repeated steps converge to the target without overshooting
        heads.nlms_step(p, 0, 1.0, 0.5)
        assert heads.predict(p[np.newaxis])[0, 0] <= 1.0 + 1e-9
    assert heads.predict(p[np.newaxis])[0, 0] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("rate", [0.0, -0.1, 0.6])
def test_nlms_rate_is_bounded(rate: float) -> None:
    x, y = synthetic()
    heads = RidgeHeads.fit(x, y, 1.0)
    with pytest.raises(ValueError, match="update rate"):
        heads.nlms_step(x[0], 0, 1.0, rate)


def test_spearman_edges() -> None:
    assert spearman(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([1.0, 1, 1]), np.array([3.0, 2, 1])) == 0.0
