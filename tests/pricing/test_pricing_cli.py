"""`thrifty models` and `thrifty prices` through the real entry point, on temporary files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from thrifty.cli import main as cli_main
from thrifty.pricing.catalog import parse_catalog, read_catalog_file, shipped_catalog

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    # main builds its parser from every subcommand module; these tests are about two of them,
    # so the others (and their imports) are left out of the parser
    monkeypatch.setattr(cli_main, "COMMANDS", {k: v for k, v in cli_main.COMMANDS.items()
                                               if k in ("models", "prices")})

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli_main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def litellm_map(**prices: float) -> dict[str, Any]:
    def chat(provider: str, inp: float, out: float) -> dict[str, Any]:
        return {"litellm_provider": provider, "mode": "chat", "input_cost_per_token": inp,
                "output_cost_per_token": out, "max_input_tokens": 131072,
                "max_output_tokens": 8192, "supports_function_calling": True}

    return {
        "sample_spec": {"mode": "doc"},
        "gpt-4o": chat("openai", prices.get("gpt4o", 2.5e-06), 1e-05),
        "together_ai/Qwen/Qwen3-Next": chat("together_ai", 1.5e-07, 1.5e-06),
        "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding",
                                   "input_cost_per_token": 2e-08},
    }


# -- thrifty models --------------------------------------------------------------------------


def test_models_json_is_the_catalog_format(run: Run) -> None:
    code, out, _ = run("models", "--json")
    assert code == 0
    data = orjson.loads(out)
    assert data["as_of"] == shipped_catalog().as_of
    assert len(data["models"]) == len(shipped_catalog())
    assert parse_catalog(data, origin="stdout").entries() == shipped_catalog().entries()


def test_models_json_for_one_provider_with_a_user_catalog(run: Run, tmp_path: Path) -> None:
    user = tmp_path / "mine.json"
    user.write_bytes(orjson.dumps({
        "as_of": "2026-11-01", "currency": "USD", "unit": "per_million_tokens",
        "models": [{"provider": "openai", "model": "gpt-4o", "input": "9", "output": "9",
                    "context_window": 128000, "max_output": 16384, "source": "my contract"}],
    }))
    code, out, _ = run("models", "--provider", "openai", "--json", "--catalog", str(user))
    assert code == 0
    models = orjson.loads(out)["models"]
    assert {m["provider"] for m in models} == {"openai"}
    gpt4o = next(m for m in models if m["model"] == "gpt-4o")
    assert (gpt4o["input"], gpt4o["source"]) == ("9", "my contract")


def test_models_table_sorted_by_provider_then_input_price(run: Run) -> None:
    code, out, _ = run("models")
    assert code == 0
    assert f"as of {shipped_catalog().as_of}" in out
    assert "claude-haiku-4-5" in out and "$0.075" in out
    assert out.index("anthropic") < out.index("deepseek") < out.index("xai")
    # within openai: gpt-5-nano ($0.05) before gpt-4o-mini ($0.15) before gpt-5.5 ($5)
    assert out.index("gpt-5-nano") < out.index("gpt-4o-mini") < out.index("gpt-5.5 ")


def test_models_unknown_provider_fails_and_lists_known(run: Run) -> None:
    code, out, err = run("models", "--provider", "nobody")
    assert code == 1 and out == ""
    assert "no provider 'nobody'" in err and "anthropic" in err


def test_models_reports_a_broken_user_catalog_as_config_error(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"as_of": "2026-11-28", "currency": "EUR", "unit": "per_million_tokens",'
                   ' "models": []}')
    code, _, err = run("models", "--catalog", str(bad))
    assert code == 2
    assert "configuration error" in err and "bad.json" in err and "currency" in err


# -- thrifty prices import -------------------------------------------------------------------


def test_prices_import_creates_then_merges(run: Run, tmp_path: Path) -> None:
    source = tmp_path / "litellm.json"
    into = tmp_path / "out" / "prices.json"
    source.write_bytes(orjson.dumps(litellm_map()))

    code, out, err = run("prices", "import", str(source), "--into", str(into))
    assert code == 0
    assert "2 added, 0 updated, 0 unchanged, 2 skipped" in out
    assert f"catalogs: [{into}]" in out
    assert "skipped 1 non-chat entries (embedding: 1)" in err
    first = read_catalog_file(into)
    assert {i.key for i in first} == {"openai/gpt-4o", "together/Qwen/Qwen3-Next"}
    qwen = first.get("together", "Qwen/Qwen3-Next")
    assert qwen is not None and qwen.price.input == Decimal("0.15")

    # a hand-written entry in the file must survive the next import
    written = orjson.loads(into.read_bytes())
    written["models"].append({"provider": "acme", "model": "rocket", "input": "1",
                              "output": "2", "context_window": 1000, "max_output": 100,
                              "source": "handwritten"})
    into.write_bytes(orjson.dumps(written))
    source.write_bytes(orjson.dumps(litellm_map(gpt4o=2e-06)))

    code, out, _ = run("prices", "import", str(source), "--into", str(into))
    assert code == 0
    assert "0 added, 1 updated, 1 unchanged, 2 skipped" in out
    second = read_catalog_file(into)
    assert len(second) == 3
    gpt4o = second.get("openai", "gpt-4o")
    assert gpt4o is not None and gpt4o.price.input == Decimal("2")
    assert second.get("acme", "rocket") is not None


def test_prices_import_defaults_to_the_current_directory(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "litellm.json"
    source.write_bytes(orjson.dumps(litellm_map()))
    monkeypatch.chdir(tmp_path)
    code, _, _ = run("prices", "import", str(source))
    assert code == 0
    assert len(read_catalog_file(tmp_path / "thrifty-prices.json")) == 2
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "cannot read"), (b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object")],
)
def test_prices_import_bad_input_is_a_config_error(
    run: Run, tmp_path: Path, content: bytes | None, expected: str
) -> None:
    source = tmp_path / "litellm.json"
    if content is not None:
        source.write_bytes(content)
    into = tmp_path / "prices.json"
    code, _, err = run("prices", "import", str(source), "--into", str(into))
    assert code == 2 and expected in err
    assert not into.exists()


# -- thrifty prices show ---------------------------------------------------------------------


def test_prices_show_by_alias_and_by_provider_slash_model(run: Run) -> None:
    code, out, _ = run("prices", "show", "gpt-4o-2024-08-06")
    assert code == 0
    assert out.startswith("openai/gpt-4o\n")
    assert "aliases:        gpt-4o-2024-08-06, gpt-4o-2024-11-20" in out
    assert "input:          2.5 USD / M tokens" in out

    code, out, _ = run("prices", "show", "groq/openai/gpt-oss-120b")
    assert code == 0
    assert "groq/openai/gpt-oss-120b" in out


def test_prices_show_unknown_model(run: Run) -> None:
    code, out, err = run("prices", "show", "no-such-model")
    assert code == 1 and out == "" and "no catalog entry" in err


def test_registering_the_commands_stays_cheap() -> None:
    probe = ("import sys, argparse, thrifty.cli.models as m, thrifty.cli.prices as p\n"
             "m.register(argparse.ArgumentParser()); p.register(argparse.ArgumentParser())\n"
             "print(sorted(n for n in ('rich', 'thrifty.pricing.catalog', 'orjson')"
             " if n in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=30)
    assert result.stdout.strip() == "[]"
