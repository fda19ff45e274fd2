"""Config: strict parsing with errors that name key, value and fix; env references;
discovery from the standard variables; resolution refuses unpriced models."""

from __future__ import annotations

from pathlib import Path

import pytest

from thrifty.config.load import describe_discovery, load_settings, parse_settings
from thrifty.config.resolve import resolve
from thrifty.errors import ConfigError, ModelNotFound


def test_unknown_key_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({"server": {"prot": 1}}, origin="x.yaml")
    assert "server.prot" in info.value.message
    assert "spelling" in info.value.message


def test_wrong_type_names_key_and_value() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({"server": {"port": "eighty"}}, origin="x.yaml")
    assert "server.port" in info.value.message and "eighty" in info.value.message


def test_env_references_and_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("providers:\n  openai:\n    api_key: ${MY_KEY}\n"
                   "    base_url: ${MY_BASE:-http://127.0.0.1:9/v1}\n")
    s = load_settings(cfg, env={"MY_KEY": "sk-secret-value"})
    p = s.providers["openai"]
    assert p.api_key is not None and p.api_key.get_secret_value() == "sk-secret-value"
    assert p.base_url == "http://127.0.0.1:9/v1"
    assert "sk-secret-value" not in repr(s)


def test_missing_env_reference_names_variable_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("providers:\n  openai:\n    api_key: ${NOPE_KEY}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    assert "NOPE_KEY" in info.value.message and "providers.openai.api_key" in info.value.message


def test_cli_overrides_win_over_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server:\n  port: 5000\n")
    s = load_settings(cfg, overrides={"server.port": 6000, "server.host": None}, env={})
    assert s.server.port == 6000 and s.server.host == "127.0.0.1"


def test_master_key_from_environment() -> None:
    s = load_settings(None, env={"THRIFTY_MASTER_KEY": "mk-123456"})
    assert s.server.master_key is not None
    assert s.server.master_key.get_secret_value() == "mk-123456"


def test_discovery_from_standard_variables() -> None:
    env = {"OPENAI_API_KEY": "sk-a", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
           "ANTHROPIC_API_KEY": "sk-b", "GOOGLE_API_KEY": "g", "OLLAMA_BASE_URL":
           "http://127.0.0.1:11434/v1", "MISTRAL_API_KEY": ""}
    s = load_settings(None, env=env)
    assert set(s.providers) == {"openai", "anthropic", "gemini", "ollama"}
    assert s.providers["openai"].base_url == "http://127.0.0.1:1/v1"
    lines = describe_discovery(env)
    assert any("OPENAI_API_KEY" in line for line in lines)
    assert not any("sk-a" in line for line in lines)


def test_unpriced_model_is_refused_with_a_fix() -> None:
    s = parse_settings({"providers": {"local": {"vendor": "vllm",
                                                "base_url": "http://127.0.0.1:1/v1"}},
                        "models": {"mine": {"provider": "local", "model": "my-llm"}}},
                       origin="t")
    with pytest.raises(ConfigError) as info:
        resolve(s)
    msg = info.value.message
    assert "models.mine" in msg and "price: 0" in msg


def test_explicit_zero_price_for_self_hosted_is_allowed() -> None:
    s = parse_settings({"providers": {"local": {"vendor": "vllm",
                                                "base_url": "http://127.0.0.1:1/v1"}},
                        "models": {"mine": {"provider": "local", "model": "my-llm",
                                            "price": 0}}}, origin="t")
    rt = resolve(s)
    t = rt.routes.resolve("mine").targets[0]
    assert t.info.price.input == 0 and t.upstream_model == "my-llm"
    with pytest.raises(ModelNotFound):
        rt.routes.resolve("other")


def test_unknown_vendor_and_provider_references() -> None:
    with pytest.raises(ConfigError, match="unknown vendor"):
        resolve(parse_settings({"providers": {"x": {"vendor": "nope"}}}, origin="t"))
    with pytest.raises(ConfigError, match="not under `providers:`"):
        resolve(parse_settings({"models": {"m": {"provider": "ghost", "price": 0}}},
                               origin="t"))


def test_vendor_without_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        resolve(parse_settings({"providers": {"openai": {}}}, origin="t"))


def test_catalog_models_are_served_plain_and_qualified() -> None:
    rt = resolve(parse_settings({"providers": {"openai": {"api_key": "sk-x"}}}, origin="t"))
    names = rt.routes.names()
    assert "gpt-4o-mini" in names and "openai/gpt-4o-mini" in names
    t = rt.routes.resolve("openai/gpt-4o-mini").targets[0]
    assert t.upstream_model == "gpt-4o-mini" and t.info.price.input > 0


def test_aliases_resolve_in_order_and_unknown_members_fail() -> None:
    base = {"providers": {"local": {"vendor": "vllm", "base_url": "http://127.0.0.1:1/v1"}},
            "models": {"a": {"provider": "local", "price": 0},
                       "b": {"provider": "local", "price": 0}}}
    rt = resolve(parse_settings({**base, "aliases": {"pair": ["b", "a"]}}, origin="t"))
    assert [t.model for t in rt.routes.resolve("pair").targets] == ["b", "a"]
    with pytest.raises(ConfigError, match="unknown model"):
        resolve(parse_settings({**base, "aliases": {"bad": ["a", "zzz"]}}, origin="t"))


def test_azure_needs_a_deployment_and_builds_its_url() -> None:
    from thrifty.providers.openai_compat import chat_url

    base = {"providers": {"az": {"vendor": "azure", "base_url": "https://r.example.com",
                                 "api_key": "k", "api_version": "2024-10-21"}}}
    with pytest.raises(ConfigError, match="deployment"):
        resolve(parse_settings({**base, "models": {"g": {"provider": "az", "model": "gpt-4o",
                                                         "price": 0}}}, origin="t"))
    rt = resolve(parse_settings({**base, "models": {"g": {
        "provider": "az", "model": "gpt-4o", "deployment": "prod", "price": 0}}}, origin="t"))
    t = rt.routes.resolve("g").targets[0]
    assert chat_url(t) == ("https://r.example.com/openai/deployments/prod/chat/completions"
                           "?api-version=2024-10-21")
    assert t.auth == "api-key"
