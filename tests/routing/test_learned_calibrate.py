"""Calibration and APGR: threshold quantiles exact, floor and lambda reach their target at the
least cost, APGR by hand and (when the dataset folder is present) equal to eval_baselines.py."""

from __future__ import annotations

import importlib.util
import math
import os
import random
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from thrifty.routing.learned.calibrate import (
    apgr,
    apgr_from_scores,
    calibrate_floor,
    calibrate_lambda,
    calibrate_threshold,
    floor_choices,
    utility_choices,
)
from thrifty.routing.learned.dataset import Price, Row

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_threshold_sends_exactly_the_target_share(share: float) -> None:
    scores = random.Random(4).sample(range(10_000), 200)
    fscores = [s / 10_000 for s in scores]
    t = calibrate_threshold(fscores, share)
    assert sum(s >= t for s in fscores) == round(share * 200)


def test_threshold_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        calibrate_threshold([0.1], 1.5)
    with pytest.raises(ValueError):
        calibrate_threshold([], 0.5)


def test_apgr_by_hand() -> None:
    # weak 0, strong 1 on prompt 0 only: Q(weak)=0, Q(strong)=0.5, gap 0.5
    qs, qw = [1.0, 0.0], [0.0, 0.0]
    perfect, curve = apgr_from_scores([0.9, 0.1], qs, qw)
    assert [(p.strong_share, p.pgr) for p in curve] == [(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)]
    assert perfect == pytest.approx(0.75)  # 0.5*(0+1)/2 + 0.5*(1+1)/2
    worst, _ = apgr_from_scores([0.1, 0.9], qs, qw)
    assert worst == pytest.approx(0.25)


def test_apgr_without_a_gap_is_nan() -> None:
    value, curve = apgr_from_scores([0.1, 0.2], [0.5, 0.5], [0.5, 0.5])
    assert math.isnan(value) and math.isnan(curve[0].pgr)


class FixedScores:
    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def strong_win_score(self, prompt: str) -> float:
        return self.scores[prompt]


def test_apgr_over_rows_adds_the_cost_curve() -> None:
    rows = [Row(str(i), "s", f"p{i}", 1_000_000, {"S": float(i % 2), "W": 0.0},
                {"S": 0, "W": 0}) for i in range(4)]
    prices = {"S": Price(2.0, 0.0), "W": Price(1.0, 0.0)}
    router = FixedScores({"p0": 0.1, "p1": 0.9, "p2": 0.2, "p3": 0.8})
    value, curve = apgr(rows, router, "S", "W", prices)
    assert value == pytest.approx(apgr_from_scores([0.1, 0.9, 0.2, 0.8], [0, 1, 0, 1],
                                                   [0, 0, 0, 0])[0])
    assert [p.cost for p in curve] == pytest.approx([4.0, 5.0, 6.0, 7.0, 8.0])


def test_floor_and_lambda_choices() -> None:
    pred = np.array([[0.9, 0.95, 0.99], [0.2, 0.7, 0.95], [0.1, 0.2, 0.3]])
    cost = np.array([[1.0, 2.0, 10.0]] * 3)
    assert floor_choices(pred, cost, 0.8).tolist() == [0, 2, 2]  # row 2: none, highest
    assert utility_choices(pred, cost, 0.0).tolist() == [2, 2, 2]
    assert utility_choices(pred, cost, 1.0).tolist() == [0, 0, 0]


def test_floor_and_lambda_calibration_reach_the_target_cheaply() -> None:
    rng = np.random.default_rng(0)
    n = 300
    hard = rng.random(n) < 0.5
    quality = np.column_stack([np.where(hard, 0.0, 1.0), np.ones(n)])  # cheap fails on hard
    pred = np.column_stack([np.where(hard, 0.2, 0.9), np.full(n, 0.95)])
    cost = np.tile([0.001, 0.01], (n, 1))
    floor = calibrate_floor(pred, quality, cost, 1.0)
    pick = floor_choices(pred, cost, floor)
    assert (pick == np.where(hard, 1, 0)).all()  # exactly the hard ones go to the dear model
    lam = calibrate_lambda(pred, quality, cost, 1.0)
    assert (utility_choices(pred, cost, lam) == np.where(hard, 1, 0)).all()
    # an unreachable target gives the most quality-seeking value instead of failing
    assert floor_choices(pred, cost, calibrate_floor(pred, quality, cost, 2.0)).tolist() == \
        floor_choices(pred, cost, calibrate_floor(pred, quality, cost, 1.0)).tolist()


def _eval_baselines() -> ModuleType | None:
    here = os.environ.get("THRIFTY_ROUTING_DATA")
    for folder in ([Path(here)] if here else []) + [REPO.parent / "shared/data/routing",
                                                    Path("/work/shared/data/routing")]:
        path = folder / "eval_baselines.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location("eval_baselines", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None


def test_apgr_matches_eval_baselines_on_a_synthetic_set() -> None:
    eb = _eval_baselines()
    if eb is None:
        pytest.skip("the routing dataset folder (shared/data/routing/eval_baselines.py) is not "
                    "present beside the repo; set THRIFTY_ROUTING_DATA to its folder")
    rng = random.Random(11)
    q_strong = [rng.random() for _ in range(57)]
    q_weak = [rng.random() * 0.6 for _ in range(57)]
    rows = [{"id": str(i), "prompt_tokens": 10,
             "models": {"S": {"quality": s, "output_tokens": 5},
                        "W": {"quality": w, "output_tokens": 5}}}
            for i, (s, w) in enumerate(zip(q_strong, q_weak, strict=True))]
    # ties included: eval_baselines keeps row order among equal scores, so must we
    scores = [round(rng.random(), 1) for _ in rows]
    pool = eb.Pool(rows, {"S": {"input_per_mtok": 1, "output_per_mtok": 1},
                          "W": {"input_per_mtok": 1, "output_per_mtok": 1}})
    ref_curve, _, _ = eb.pgr_curve(pool, "W", "S", scores)
    ours, curve = apgr_from_scores(scores, q_strong, q_weak)
    assert ours == pytest.approx(eb.apgr(ref_curve), abs=1e-12)
    ours_curve = [(p.strong_share, p.pgr) for p in curve]
    assert len(ours_curve) == len(ref_curve)
    for (x, y), (rx, ry) in zip(ours_curve, ref_curve, strict=True):
        assert x == pytest.approx(rx) and y == pytest.approx(ry)
