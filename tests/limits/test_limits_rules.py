"""Limit rules: strict parsing whose errors name the key and the fix, exact USD, and which
limits apply to a request."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from thrifty.errors import ConfigError
from thrifty.limits.model import Limit
from thrifty.limits.rules import LimitRule, RequestScope, applicable, parse_rules

CONFIG = """
- {resource: usd, window: day, scope: team, value: research, amount: "50.00", soft_ratio: 0.8}
- {resource: requests, window: minute, scope: key, value: "*", amount: 60}
- {resource: requests, window: minute, scope: key, value: vip, amount: 600}
- {resource: output_tokens, window: hour, amount: 2000000}
- {resource: input_tokens, window: month, scope: tag, value: "*", amount: 1000000}
- {resource: usd, window: total, scope: model, value: gpt-4o, amount: 0.000000001}
- {resource: usd, window: day, scope: provider, value: openai, amount: 7}
"""


@pytest.fixture
def rules() -> tuple[LimitRule, ...]:
    return parse_rules(yaml.safe_load(CONFIG))


def test_usd_amounts_become_exact_nano_dollars(rules: tuple[LimitRule, ...]) -> None:
    assert [rule.units for rule in rules] == [
        50_000_000_000, 60, 600, 2_000_000, 1_000_000, 1, 7_000_000_000
    ]


def test_applicable_picks_the_limits_of_this_request(rules: tuple[LimitRule, ...]) -> None:
    ctx = RequestScope(key_id="k1", team="research", model="gpt-4o", provider="anthropic",
                       tags=("batch", "eu", "batch"))
    assert applicable(rules, ctx) == [
        Limit("usd", "day", "team", "research", 50_000_000_000, soft_ratio=0.8),
        Limit("requests", "minute", "key", "k1", 60),
        Limit("output_tokens", "hour", "global", None, 2_000_000),
        Limit("input_tokens", "month", "tag", "batch", 1_000_000),
        Limit("input_tokens", "month", "tag", "eu", 1_000_000),
        Limit("usd", "total", "model", "gpt-4o", 1),
    ]


def test_a_named_value_overrides_the_star_default(rules: tuple[LimitRule, ...]) -> None:
    limits = applicable(rules, RequestScope(key_id="vip"))
    assert [(lim.id, lim.amount) for lim in limits] == [
        ("key=vip:requests:minute", 600),
        ("global:output_tokens:hour", 2_000_000),
    ]


def test_unknown_scope_values_match_nothing_but_global(rules: tuple[LimitRule, ...]) -> None:
    assert [lim.id for lim in applicable(rules, RequestScope())] == ["global:output_tokens:hour"]
    ctx = RequestScope(team="other", model="gpt-4o-mini", provider="openai")
    assert [lim.id for lim in applicable(rules, ctx)] == [
        "global:output_tokens:hour", "provider=openai:usd:day"
    ]


def _rule(**fields: Any) -> dict[str, Any]:
    return {"resource": "usd", "window": "day", "amount": "1", **fields}


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ([_rule(window="daily")], ["limits[0].window", "'minute', 'hour', 'day'"]),
        ([_rule(), _rule(colour="red", window="hour")], ["limits[1].colour",
                                                         "a rule takes resource"]),
        ([_rule(amount="0.0000000001")], ["limits[0].amount", "at most 9 decimals"]),
        ([_rule(amount="ten")], ["limits[0].amount", "'ten'", '"12.50"']),
        ([_rule(amount=-3)], ["limits[0].amount", ">= 0"]),
        ([_rule(resource="requests", amount=1.5)], ["limits[0].amount", "whole units"]),
        ([_rule(scope="team")], ["limits[0].value", "a team rule needs a value", "'*'"]),
        ([_rule(value="x")], ["limits[0].value", "a global rule takes no value"]),
        ([_rule(scope="key", value="")], ["limits[0].value", "must not be empty"]),
        ([_rule(soft_ratio=1.5)], ["limits[0].soft_ratio", "less than 1"]),
        ([_rule(), _rule(amount="2")], ["limits[1] repeats limits[0]", "global, usd per day"]),
        ({"resource": "usd"}, ["limits: must be a list of rules"]),
    ],
)
def test_errors_name_the_key_and_the_fix(raw: Any, names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rules(raw)
    for name in names:
        assert name in str(info.value)


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_rules([_rule(window="weekly"), _rule(resource="euros")])
    assert "limits[0].window" in str(info.value) and "limits[1].resource" in str(info.value)


def test_the_same_value_in_different_windows_is_not_a_repeat() -> None:
    assert len(parse_rules([_rule(), _rule(window="hour"), _rule(scope="key", value="*"),
                            _rule(scope="key", value="k1")])) == 4
    assert parse_rules(None) == ()
