"""Catalog lookups (id, alias, across providers), overrides, merging files, strict parsing."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from thrifty.errors import ConfigError
from thrifty.pricing.catalog import (
    Catalog,
    CatalogEntry,
    catalog_to_json,
    load_catalog,
    parse_catalog,
    shipped_catalog,
)
from thrifty.pricing.price import ModelInfo, Price


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "provider": "acme",
        "model": "rocket-1",
        "aliases": ["rocket-1-2026-01-01"],
        "input": "1.5",
        "output": "6",
        "cached_input": "0.15",
        "cache_write": "1.875",
        "context_window": 128000,
        "max_output": 16000,
        "capabilities": ["tools", "streaming"],
        "source": "https://acme.example/pricing read 2026-11-28",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def doc(*entries: dict[str, Any], **top: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"as_of": "2026-11-28", "currency": "USD",
                            "unit": "per_million_tokens", "models": list(entries)}
    data.update(top)
    return data


def info(provider: str, model: str, inp: str, out: str) -> ModelInfo:
    return ModelInfo(provider, model, Price.of(inp, out), 100_000, 10_000, frozenset(), "test")


# -- lookups ---------------------------------------------------------------------------------


def test_get_by_vendor_id_and_by_alias() -> None:
    cat = shipped_catalog()
    by_id = cat.get("openai", "gpt-4o")
    assert by_id is not None and by_id.price.input == Decimal("2.5")
    assert cat.get("openai", "gpt-4o-2024-08-06") is by_id
    haiku = cat.get("anthropic", "claude-haiku-4-5")
    assert haiku is not None and cat.get("anthropic", "claude-haiku-4-5-20251001") is haiku
    assert cat.aliases("openai", "gpt-4o") == ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20")


def test_get_misses_return_none() -> None:
    cat = shipped_catalog()
    assert cat.get("openai", "no-such-model") is None
    assert cat.get("anthropic", "gpt-4o") is None  # right id, wrong provider
    assert cat.get("openai", "gpt-4o-2024-05-13") is None  # a differently priced snapshot


def test_find_searches_every_provider() -> None:
    keys = [i.key for i in shipped_catalog().find("openai/gpt-oss-120b")]
    assert sorted(keys) == ["groq/openai/gpt-oss-120b", "openrouter/openai/gpt-oss-120b",
                            "together/openai/gpt-oss-120b"]
    assert [i.key for i in shipped_catalog().find("gpt-4o-mini-2024-07-18")] == [
        "openai/gpt-4o-mini"]
    assert shipped_catalog().find("nothing") == []


def test_models_filters_by_provider_and_providers_are_sorted() -> None:
    cat = shipped_catalog()
    assert {i.provider for i in cat.models("groq")} == {"groq"}
    assert len(cat.models()) == len(cat)
    assert cat.providers() == sorted(cat.providers())


# -- overrides and merging -------------------------------------------------------------------


def test_with_entries_overrides_same_model_keeps_aliases_and_appends_new() -> None:
    base = shipped_catalog()
    cheaper = info("openai", "gpt-4o", "1", "4")
    new = info("acme", "rocket-1", "1", "2")
    cat = base.with_entries([cheaper, new])
    assert len(cat) == len(base) + 1
    assert cat.get("openai", "gpt-4o") == cheaper
    assert cat.get("openai", "gpt-4o-2024-11-20") == cheaper  # alias follows the override
    assert cat.get("acme", "rocket-1") == new
    # the original is untouched
    original = base.get("openai", "gpt-4o")
    assert original is not None and original.price.input == Decimal("2.5")
    # override kept its place in the order
    assert [i.key for i in cat].index("openai/gpt-4o") == [i.key for i in base].index(
        "openai/gpt-4o")


def test_exact_id_wins_over_another_entrys_alias() -> None:
    snapshot = info("openai", "gpt-4o-2024-08-06", "3", "12")
    cat = shipped_catalog().with_entries([snapshot])
    assert cat.get("openai", "gpt-4o-2024-08-06") == snapshot
    assert cat.get("openai", "gpt-4o-2024-11-20") == shipped_catalog().get("openai", "gpt-4o")


def test_load_catalog_merges_files_in_order(tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    second = tmp_path / "second.json"
    first.write_bytes(orjson.dumps(doc(entry(input="1"), entry(model="other", aliases=[]))))
    second.write_bytes(orjson.dumps(doc(entry(input="2"))))
    cat = load_catalog([first, second])
    rocket = cat.get("acme", "rocket-1-2026-01-01")
    assert rocket is not None and rocket.price.input == Decimal("2")
    assert cat.get("acme", "other") is not None
    assert len(cat) == len(shipped_catalog()) + 2
    assert cat.as_of == shipped_catalog().as_of


def test_load_catalog_reports_missing_and_broken_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match=r"nope\.json: cannot read"):
        load_catalog([missing])
    broken = tmp_path / "broken.json"
    broken.write_text('{"as_of": "2026-11-28",\n  "models": [}\n')
    with pytest.raises(ConfigError, match=r"broken.json: not valid JSON at line 2"):
        load_catalog([broken])


# -- parsing ---------------------------------------------------------------------------------


def test_parse_defaults_cache_prices_to_input() -> None:
    cat = parse_catalog(doc(entry(cached_input=..., cache_write=None)), origin="t")
    rocket = cat.get("acme", "rocket-1")
    assert rocket is not None
    assert rocket.price == Price(Decimal("1.5"), Decimal("6"), Decimal("1.5"), Decimal("1.5"))
    assert rocket.capabilities == frozenset({"tools", "streaming"})


def test_parse_accepts_integer_prices_and_keeps_decimals_exact() -> None:
    cat = parse_catalog(doc(entry(input=2, output="0.1000000000000000055511151231257827")),
                        origin="t")
    rocket = cat.get("acme", "rocket-1")
    assert rocket is not None
    assert rocket.price.input == Decimal(2)
    assert rocket.price.output == Decimal("0.1000000000000000055511151231257827")


@pytest.mark.parametrize(
    ("change", "field", "bad"),
    [
        ({"input": "-1"}, "input", "'-1'"),
        ({"input": 0.15}, "input", "0.15"),
        ({"output": ...}, "output", "None"),
        ({"cached_input": "cheap"}, "cached_input", "'cheap'"),
        ({"cache_write": "NaN"}, "cache_write", "'NaN'"),
        ({"context_window": 0}, "context_window", "0"),
        ({"max_output": 200000}, "max_output", "200000"),
        ({"max_output": True}, "max_output", "True"),
        ({"capabilities": ["tools", "telepathy"]}, "capabilities", "'telepathy'"),
        ({"aliases": ["rocket-1"]}, "aliases", "['rocket-1']"),
        ({"source": ""}, "source", "''"),
        ({"inputs": "1"}, "inputs", "'1'"),
    ],
)
def test_parse_errors_name_origin_entry_field_value_and_fix(
    change: dict[str, Any], field: str, bad: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_catalog(doc(entry(model="good", aliases=[]), entry(**change)), origin="user.json")
    message = caught.value.message
    assert message.startswith("user.json: models[1] (acme/rocket-1): ")
    assert f"field '{field}' = {bad}" in message
    assert "; " in message.split(" is invalid", 1)[1]  # followed by the fix
    assert caught.value.param == field


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], "top level: field '(document)' = 'list'"),
        (doc(currency="EUR"), "field 'currency' = 'EUR' is invalid; set it to \"USD\""),
        (doc(unit="per_token"), "field 'unit' = 'per_token'"),
        (doc(as_of="28/11/2026"), "field 'as_of' = '28/11/2026' is invalid; write the date"),
        (doc(as_of="2026-02-30"), "field 'as_of' = '2026-02-30'"),
        (doc(models={}), "field 'models' = {}"),
        (doc(extra=1), "field 'extra' = 1 is invalid; remove it"),
        (doc(models=["gpt"]), "models[0]: field '(entry)' = 'gpt'"),
        (doc(entry(provider="")), "models[0]: field 'provider' = ''"),
    ],
)
def test_parse_errors_at_the_top_level(data: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"^cat\.json: ") as caught:
        parse_catalog(data, origin="cat.json")
    assert expected in caught.value.message


def test_parse_rejects_two_entries_for_one_name() -> None:
    with pytest.raises(ConfigError, match="'rocket-1' is already used by acme/rocket-1"):
        parse_catalog(doc(entry(), entry(model="rocket-2", aliases=["rocket-1"])), origin="t")
    # the same name at another provider is fine
    parse_catalog(doc(entry(), entry(provider="other")), origin="t")


def test_catalog_to_json_writes_plain_decimal_strings() -> None:
    cat = Catalog("2026-11-28", [CatalogEntry(
        ModelInfo("acme", "m", Price.of(Decimal("1E+1"), Decimal("0.1500000")), 10, 5,
                  source="test"), ())])
    written = catalog_to_json(cat)["models"][0]
    assert (written["input"], written["output"], written["cached_input"]) == ("10", "0.15", "10")
    assert "aliases" not in written
    reparsed = parse_catalog(copy.deepcopy(catalog_to_json(cat)), origin="t")
    assert reparsed.entries()[0].info.price == cat.entries()[0].info.price
