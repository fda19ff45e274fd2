"""The routing command line: ``thrifty route --explain`` (against the whole price catalog
when nothing is configured, or against a config file), and ``thrifty router train`` followed
by ``thrifty bench routing`` over the trained router with the strong/weak APGR sweep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from thrifty.cli.main import main as cli_main
from thrifty.errors import ThriftyError
from thrifty.providers.vendors import VENDORS
from thrifty.routing.learned.router import LearnedRouter
from thrifty.routing.learned.synthetic import PRICES, synthetic_rows

CODE = "assert add(2, 3) == 5"
MATH = r"Find $x$ if $x^2 = \frac{9}{4}$."


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config and no provider keys in the environment: `route` explains the catalog."""
    monkeypatch.delenv("THRIFTY_CONFIG", raising=False)
    for vendor in VENDORS.values():
        for name in vendor.key_env:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- thrifty route ---------------------------------------------------------------------------


def test_route_explain_auto_against_the_catalog(no_env: None,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "route", "--explain", "--model", "auto", CODE)
    assert code == 0
    assert "explaining against the whole catalog" in out
    assert "rules:auto#0(code)" in out
    for model in ("deepseek-v4-flash", "gpt-4o-mini", "gpt-4o"):
        assert model in out  # the candidates table
    assert "tier 1: deepseek-v4-flash  checks: format, truncation, refusal, agreement" in out
    assert "tier 3: gpt-4o" in out and "tier 4" not in out


def test_route_json_has_the_tiers(no_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "route", "--json", "--model", "auto", MATH)
    assert code == 0
    plan = json.loads(out)
    assert plan["route"].startswith("alias:auto;cascade;rules:auto#1(math)")
    assert plan["mode"] == "cascade" and plan["via"][0] == "rules:auto#1(math)"
    tiers = plan["tiers"]
    assert len(tiers) == 6 and all(len(t) == 1 for t in tiers)
    assert tiers[-1] == ["claude-sonnet-4-6"]
    assert len({t[0] for t in tiers}) == 6  # a model never agrees with itself
    assert {c["model"] for c in plan["candidates"]} >= {t[0] for t in tiers}


def test_route_explains_an_image_request_excluding_text_only_models(
        no_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "route", "--json", "--image", "--model", "auto", "describe this")
    assert code == 0
    plan = json.loads(out)
    excluded = {c["model"]: c["excluded"] for c in plan["candidates"] if "excluded" in c}
    assert excluded and all("vision" in why for why in excluded.values())
    assert not {t[0] for t in plan["tiers"]} & set(excluded)


def test_route_with_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THRIFTY_CONFIG", raising=False)
    cfg = {
        "providers": {"local": {"vendor": "vllm", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"small": {"provider": "local", "price": {"input": "0.1", "output": "0.2"}},
                   "large": {"provider": "local", "price": {"input": "2", "output": "8"}}},
        "aliases": {"casc": {"policy": "cascade", "tiers": [
            {"models": ["small"], "checks": ["refusal", {"agreement": {"min_votes": 2}}]},
            {"models": ["large"]}]},
            "cheap": {"policy": "lowest-cost", "models": ["large", "small"]}},
        "ledger": {"backend": "none"},
    }
    path = tmp_path / "thrifty.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, out, _ = run(capsys, "route", "--json", "--config", str(path), "--model", "casc", "hi")
    assert code == 0
    assert json.loads(out)["tiers"] == [["small"], ["large"]]
    code, out, _ = run(capsys, "route", "--json", "-c", str(path), "-m", "cheap", "hi")
    plan = json.loads(out)
    assert plan["route"] == "alias:cheap;lowest-cost" and plan["tiers"] == [["small"], ["large"]]
    scores = [c["score"] for c in plan["candidates"]]
    assert scores == sorted(scores)
    code, out, _ = run(capsys, "route", "-c", str(path), "-m", "casc", "hi")
    assert code == 0 and "tier 1: small  checks: refusal, agreement" in out
    assert "auto" not in out  # no served model is in auto's lists: there is no auto


def test_route_with_an_unknown_model_is_a_clean_error(
        no_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code, _, err = run(capsys, "route", "--model", "no-such-model", "hi")
    except ThriftyError as exc:
        pytest.fail("`thrifty route` with an unknown model ends in a traceback: cli/route.py "
                    f"run() lets {type(exc).__name__} escape and cli/main.py catches only "
                    "ConfigError; print the message and return 2 instead")
    assert code == 2 and "no-such-model" in err


# -- thrifty router train + bench routing ------------------------------------------------------


def write_synthetic(tmp_path: Path, n: int = 120) -> tuple[Path, Path]:
    data = tmp_path / "synthetic.jsonl"
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in synthetic_rows(n, 0)))
    prices = tmp_path / "prices.json"
    prices.write_bytes(orjson.dumps(PRICES))
    return data, prices


def test_router_train_then_bench_reports_apgr(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data, prices = write_synthetic(tmp_path)
    out_dir = tmp_path / "router"
    code, out, _ = run(capsys, "router", "train", "--data", str(data), "--prices", str(prices),
                       "--out", str(out_dir), "--strong", "big-model", "--weak", "small-model")
    assert code == 0 and f"wrote {out_dir}" in out and "APGR" in out
    router = LearnedRouter.load(out_dir)
    assert set(router.models) == {"small-model", "mid-model", "big-model"}
    assert router.default_mode == "threshold" and router.threshold is not None

    code, out, err = run(capsys, "bench", "routing", "--data", str(data), "--prices",
                         str(prices), "--policy", str(out_dir), "--strong", "big-model",
                         "--weak", "small-model", "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    (pool,) = report["pools"].values()
    assert pool["rows"] == 120
    assert 0.6 < pool["apgr"] <= 1.0  # in-sample, on a signal a lexical router can see
    assert {"quality", "cost", "calls_per_prompt", "best_single"} <= set(pool)
    assert pool["calls_per_prompt"] == 1.0  # a learned route picks one model per prompt
    assert pool["best_single"]["model"] == "big-model"
    assert pool["cost"] < pool["best_single"]["cost"]


def test_bench_apgr_needs_a_router_directory(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data, prices = write_synthetic(tmp_path, 30)
    code, out, err = run(capsys, "bench", "routing", "--data", str(data), "--prices",
                         str(prices), "--policy", "lowest-cost", "--strong", "big-model",
                         "--weak", "small-model", "--json")
    assert code == 2 and out == ""
    assert "configuration error" in err and "router directory" in err
