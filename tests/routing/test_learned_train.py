"""Training on the shipped synthetic math/code-like dataset: the learned signal is real on
held-out rows, runs are deterministic, and `thrifty router train` writes a loadable router."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from thrifty.cli import main as cli_main
from thrifty.routing.learned.dataset import Price, Row, select_pool
from thrifty.routing.learned.embedder import HashingEmbedder
from thrifty.routing.learned.router import LearnedRouter
from thrifty.routing.learned.synthetic import PRICES, synthetic_rows
from thrifty.routing.learned.train import (
    TrainSpec,
    cross_validate,
    prepare,
    repeated_cross_validate,
    run_training,
)

PRICE = {m: Price(p["input_per_mtok"], p["output_per_mtok"]) for m, p in PRICES.items()}


def rows(n: int = 240, seed: int = 0) -> list[Row]:
    return [Row(r["id"], r["source"], r["prompt"], r["prompt_tokens"],
                {m: v["quality"] for m, v in r["models"].items()},
                {m: v["output_tokens"] for m, v in r["models"].items()})
            for r in synthetic_rows(n, seed)]


SPEC = TrainSpec(features="lexical", strong="big-model", weak="small-model", seed=0)


def test_training_learns_which_prompts_need_the_strong_model() -> None:
    models, pool = select_pool(rows(), "auto")
    result = run_training(prepare(pool, models, PRICE, "lexical", None), SPEC, None)
    held = result.holdout
    assert result.n_holdout == 60 and result.n_train == 180
    sw = held["strong_weak"]
    assert sw["apgr"] > 0.62  # random is 0.5
    assert sw["apgr"] > 0.85 * sw["apgr_oracle"]
    router = result.router
    arithmetic = "Tom has 3 apples and buys 4 more. How many apples does he have?"
    proof = "Let $n = 5$. Prove that $\\frac{n^2 + 3}{n}$ is not an integer for every $n > 3$."
    assert router.strong_win_score(proof) > router.strong_win_score(arithmetic)
    pred = router.predict(arithmetic)
    assert pred["small-model"] > 0.8
    assert router.predict(proof)["small-model"] < 0.3
    costs = {"small-model": 0.0001, "mid-model": 0.001, "big-model": 0.01}
    assert router.choose(arithmetic, costs, quality_floor=0.8).model == "small-model"
    assert router.choose(proof, costs, quality_floor=0.8).model == "big-model"
    pol = held["policies"]
    # floor mode keeps most of the best model's quality for a fraction of its cost
    assert pol["floor"]["mean_quality"] > 0.85 * pol["best_single"]["mean_quality"]
    assert pol["floor"]["total_cost"] < 0.6 * pol["best_single"]["total_cost"]


def test_training_is_deterministic_given_the_seed() -> None:
    models, pool = select_pool(rows(), "auto")
    data = prepare(pool, models, PRICE, "both", HashingEmbedder(32))
    spec = TrainSpec(features="both", strong="big-model", weak="small-model", seed=3)
    a = run_training(data, spec, HashingEmbedder(32)).router
    b = run_training(data, spec, HashingEmbedder(32)).router
    for block in a.blocks:
        assert np.array_equal(a.blocks[block].quality.weights, b.blocks[block].quality.weights)
    assert (a.threshold, a.quality_floor, a.lam) == (b.threshold, b.quality_floor, b.lam)


def test_default_mode_follows_the_training_options() -> None:
    models, pool = select_pool(rows(90), "auto")
    data = prepare(pool, models, PRICE, "lexical", None)
    assert run_training(data, SPEC, None).router.default_mode == "threshold"
    no_pair = run_training(data, TrainSpec(), None).router
    assert no_pair.default_mode == "lambda" and no_pair.lam is not None
    assert no_pair.threshold is None
    fixed = run_training(data, TrainSpec(quality_floor=0.7), None).router
    assert (fixed.default_mode, fixed.quality_floor) == ("floor", 0.7)
    arithmetic = "Tom has 3 apples and buys 4 more. How many apples does he have?"
    costs = {"small-model": 0.0001, "mid-model": 0.001, "big-model": 0.01}
    assert no_pair.choose(arithmetic, costs).model == "small-model"


def test_cross_validation_reports_every_mode() -> None:
    models, pool = select_pool(rows(150), "auto")
    cv = cross_validate(prepare(pool, models, PRICE, "lexical", None), SPEC, None, k=3)
    assert cv["k"] == 3
    assert 0.6 < cv["apgr_pooled"] <= 1.0 and 0.6 < cv["apgr_fold_mean"] <= 1.0
    assert set(cv["floor"]) == {"mean_quality", "total_cost"} == set(cv["lambda"])


def test_repeated_cross_validation_averages_the_seeds() -> None:
    models, pool = select_pool(rows(120), "auto")
    data = prepare(pool, models, PRICE, "lexical", None)
    spec = TrainSpec(features="lexical", strong="big-model", weak="small-model", seed=4)
    rep = repeated_cross_validate(data, spec, None, k=3, seeds=3)
    singles = [cross_validate(data, TrainSpec(features="lexical", strong="big-model",
                                              weak="small-model", seed=s), None, k=3)
               for s in (4, 5, 6)]
    pooled = [c["apgr_pooled"] for c in singles]
    assert [r["apgr_pooled"] for r in rep["runs"]] == pooled  # seeds 4, 5, 6 in order
    assert rep["apgr_pooled"] == pytest.approx(np.mean(pooled))
    assert rep["apgr_pooled_sd"] == pytest.approx(np.std(pooled))
    assert rep["apgr_pooled_min"] == min(pooled) and rep["apgr_pooled_max"] == max(pooled)
    assert rep["floor"]["mean_quality"] == pytest.approx(
        np.mean([c["floor"]["mean_quality"] for c in singles]))
    assert (rep["k"], rep["seeds"]) == (3, 3)
    # different seeds split differently: the runs are not one run repeated
    assert len({c["lambda"]["total_cost"] for c in singles} | set(pooled)) > 2
    with pytest.raises(ValueError, match="seeds must be at least 1"):
        repeated_cross_validate(data, spec, None, k=3, seeds=0)


def test_bad_pair_is_a_clear_error() -> None:
    models, pool = select_pool(rows(40), "auto")
    data = prepare(pool, models, PRICE, "lexical", None)
    with pytest.raises(ValueError, match="not in this pool"):
        run_training(data, TrainSpec(strong="big-model", weak="gpt-9"), None)
    with pytest.raises(ValueError, match="both --strong and --weak"):
        run_training(data, TrainSpec(strong="big-model"), None)


def test_cli_train_writes_a_loadable_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # only the router subcommand: the others' imports are not this test's business
    monkeypatch.setattr(cli_main, "COMMANDS",
                        {"router": ("router", "train and inspect learned routers")})
    data, prices, out = tmp_path / "d.jsonl", tmp_path / "p.json", tmp_path / "router"
    data.write_bytes(b"\n".join(orjson.dumps(r) for r in synthetic_rows(120, 5)) + b"\n")
    prices.write_bytes(orjson.dumps(PRICES))
    code = cli_main.main(["router", "train", "--data", str(data), "--prices", str(prices),
                          "--out", str(out), "--pool", "zeroeval", "--strong", "big-model",
                          "--weak", "small-model", "--cv", "3", "--seed", "1"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "held-out figures (30 rows; fitted on 90)" in text
    assert "APGR" in text and "3-fold cross-validation" in text
    router = LearnedRouter.load(out)
    assert router.models == ("big-model", "mid-model", "small-model")
    meta = orjson.loads((out / "router.json").read_bytes())
    assert len(meta["info"]["dataset_sha256"]) == 64 and meta["info"]["n_rows"] == 120
    assert (out / "weights.npz").is_file()

    assert meta["info"]["cv"]["seeds"] == 1 and "sd " not in text

    code = cli_main.main(["router", "train", "--data", str(data), "--prices", str(prices),
                          "--out", str(out), "--pool", "zeroeval", "--strong", "big-model",
                          "--weak", "small-model", "--cv", "3", "--cv-seeds", "2"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "3-fold cross-validation, mean over 2 seeds" in text and "(sd " in text
    cv = orjson.loads((out / "router.json").read_bytes())["info"]["cv"]
    assert cv["seeds"] == 2 and len(cv["runs"]) == 2

    code = cli_main.main(["router", "score", str(out), "What is 2 + 2?"])
    text = capsys.readouterr().out
    assert code == 0
    assert all(m in text for m in router.models) and "strong-win score" in text


def test_cli_reports_a_missing_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_main, "COMMANDS", {"router": ("router", "learned routers")})
    data, prices = tmp_path / "d.jsonl", tmp_path / "p.json"
    data.write_bytes(b"\n".join(orjson.dumps(r) for r in synthetic_rows(20)) + b"\n")
    prices.write_bytes(orjson.dumps(PRICES))
    code = cli_main.main(["router", "train", "--data", str(data), "--prices", str(prices),
                          "--out", str(tmp_path / "r"), "--pool", "alpaca_eval"])
    assert code == 2
    assert "no pool of 'alpaca_eval' rows" in capsys.readouterr().err
