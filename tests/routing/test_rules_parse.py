"""Rule parsing: every mistake is a ConfigError naming where, the rule index, the key, the
bad value and the fix."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from thrifty.errors import ConfigError
from thrifty.routing.rules import RuleSet

WHERE = "aliases.auto.rules"
OK = {"when": {"has_tools": True}, "use": {"route": "tools"}}


def error_of(raw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        RuleSet.parse(raw, where=WHERE)
    return info.value.message


def second(rule: dict[str, Any]) -> str:
    """The error of ``rule`` placed second, after a valid one, so the index shows."""
    return error_of([OK, rule])


@pytest.mark.parametrize(("rule", "expected"), [
    # the envelope
    ({"when": {"has_tools": True}, "use": {"route": "x"}, "then": 1},
     r"\[1\]\.then: .*remove it or check its spelling"),
    ({"when": {"has_tools": True}}, r"\[1\]: .*needs `when:` and `use:`"),
    ({"use": {"route": "x"}}, r"\[1\]: .*needs `when:` and `use:`"),
    ({"default": {"route": "x"}, "when": {"stream": True}}, r"\[1\]: .*takes no `when`"),
    ({"when": {"stream": True}, "use": {"route": "x", "models": ["a"]}},
     r"\[1\]\.use: .*either `route`"),
    ({"when": {"stream": True}, "use": {}}, r"\[1\]\.use: .*say what to use"),
    ({"when": {"stream": True}, "use": {"models": "gpt-4o"}},
     r"\[1\]\.use\.models: .*'gpt-4o'.*write a list"),
    ({"when": {"stream": True}, "use": {"models": []}}, r"\[1\]\.use\.models: .*at least 1"),
    ({"when": {"stream": True}, "use": {"modles": ["a"]}},
     r"\[1\]\.use\.modles: .*check its spelling"),
    ({"name": 7, "when": {"stream": True}, "use": {"route": "x"}}, r"\[1\]\.name: .*got 7"),
    # fields and operators
    ({"when": {"has_image": True}, "use": {"route": "x"}},
     r"\[1\]\.when\.has_image: unknown field 'has_image'; did you mean has_images\?"),
    ({"when": {"metadata.": "x"}, "use": {"route": "x"}}, r"\[1\]\.when\.metadata\.: unknown"),
    ({"when": {"estimated_tokens": {"greater": 5}}, "use": {"route": "x"}},
     r"\[1\]\.when\.estimated_tokens\.greater: operator 'greater' .*gt, gte"),
    ({"when": {"has_tools": {"gt": 1}}, "use": {"route": "x"}},
     r"\[1\]\.when\.has_tools\.gt: operator 'gt' does not apply to has_tools \(bool\)"),
    ({"when": {"tags": {"eq": "vip"}}, "use": {"route": "x"}},
     r"\[1\]\.when\.tags\.eq: .*use one of contains"),
    ({"when": {"language": {"gt": "en"}}, "use": {"route": "x"}},
     r"\[1\]\.when\.language\.gt: operator 'gt' does not apply"),
    ({"when": {"estimated_tokens": {}}, "use": {"route": "x"}},
     r"\[1\]\.when\.estimated_tokens: no operator"),
    # operands
    ({"when": {"estimated_tokens": {"gt": "100k"}}, "use": {"route": "x"}},
     r"\[1\]\.when\.estimated_tokens\.gt: estimated_tokens is a number, got '100k'"),
    ({"when": {"estimated_tokens": {"gt": None}}, "use": {"route": "x"}},
     r"\[1\]\.when\.estimated_tokens\.gt: needs a value"),
    ({"when": {"estimated_tokens": {"gt": True}}, "use": {"route": "x"}},
     r"is a number, got True"),
    ({"when": {"has_images": "yes"}, "use": {"route": "x"}},
     r"\[1\]\.when\.has_images\.eq: has_images is true or false, got 'yes'"),
    ({"when": {"language": {"in": "en"}}, "use": {"route": "x"}},
     r"\[1\]\.when\.language\.in: `in` takes a non-empty list, got 'en'"),
    ({"when": {"language": {"not_in": []}}, "use": {"route": "x"}},
     r"\.language\.not_in: `not_in` takes a non-empty list"),
    ({"when": {"language": {"in": ["en", "english"]}}, "use": {"route": "x"}},
     r"\[1\]\.when\.language\.in\[1\]: languages are ISO 639-1 codes .*got 'english'"),
    ({"when": {"language": "EN"}, "use": {"route": "x"}}, r"\.language\.eq: .*got 'EN'"),
    ({"when": {"response_format": "json"}, "use": {"route": "x"}},
     r"\.response_format\.eq: response_format is one of text, json_object, json_schema"),
    ({"when": {"metadata.team": 5}, "use": {"route": "x"}},
     r"\.metadata\.team\.eq: metadata\.team compares with strings, got 5; quote it"),
    ({"when": {"tags": {"in": ["a", None]}}, "use": {"route": "x"}},
     r"\.tags\.in\[1\]: needs a value"),
    ({"when": {"tags": {"contains": ["a"]}}, "use": {"route": "x"}},
     r"\.tags\.contains: `contains` takes a string"),
    ({"when": {"metadata.app": {"matches": "(unclosed"}}, "use": {"route": "x"}},
     r"\.metadata\.app\.matches: '\(unclosed' is not a valid regular expression"),
    ({"when": {"metadata.app": {"matches": 3}}, "use": {"route": "x"}},
     r"\.matches: `matches` takes a regular expression string, got 3"),
    # combinators
    ({"when": {}, "use": {"route": "x"}}, r"\[1\]\.when: a condition is a non-empty mapping"),
    ({"when": {"any": []}, "use": {"route": "x"}},
     r"\[1\]\.when\.any: `any` takes a non-empty list"),
    ({"when": {"all": {"stream": True}}, "use": {"route": "x"}},
     r"\[1\]\.when\.all: `all` takes a non-empty list"),
    ({"when": {"any": [{"stream": True}, {"strem": True}]}, "use": {"route": "x"}},
     r"\[1\]\.when\.any\[1\]\.strem: unknown field 'strem'; did you mean stream\?"),
    ({"when": {"not": [{"stream": True}]}, "use": {"route": "x"}},
     r"\[1\]\.when\.not: a condition is a non-empty mapping"),
    ({"when": {"not": {"all": [{"tags": {"matches": "["}}]}}, "use": {"route": "x"}},
     r"\[1\]\.when\.not\.all\[0\]\.tags\.matches: '\[' is not a valid regular expression"),
])
def test_errors_name_the_rule_key_value_and_fix(rule: dict[str, Any], expected: str) -> None:
    message = second(rule)
    assert message.startswith(f"{WHERE}[1]"), message
    assert re.search(expected, message), message


def test_rule_must_be_a_mapping() -> None:
    assert error_of([OK, OK, "images -> vision"]).startswith(f"{WHERE}[2]: a rule must be a "
                                                             "mapping, got 'images -> vision'")


def test_rules_must_be_a_non_empty_list() -> None:
    assert "must be a list of rules, got dict" in error_of({"rules": []})
    assert "must be a list of rules, got str" in error_of("rules")
    assert "no rules" in error_of([])


def test_nothing_may_follow_the_default() -> None:
    message = error_of([OK, {"default": {"route": "a"}}, OK])
    assert message.startswith(f"{WHERE}[2]: a rule after the default can never match")
    assert "move the `default:` rule to the end" in message
    message = error_of([{"default": {"route": "a"}}, {"default": {"route": "b"}}])
    assert message.startswith(f"{WHERE}[1]: a rule after the default")


def test_the_first_error_in_order_is_reported() -> None:
    message = error_of([OK, {"when": {"bad": 1}, "use": {"route": "x"}},
                        {"when": {"worse": 1}, "use": {"route": "x"}}])
    assert message.startswith(f"{WHERE}[1].when.bad")


def test_yaml_spec_parses_and_regexes_compile_once() -> None:
    raw = yaml.safe_load(r"""
    - when: {metadata.app: {matches: '^batch-\d+$'}}
      use: {route: batch}
    """)
    rules = RuleSet.parse(raw, where=WHERE)
    assert len(rules) == 1
    assert not rules.needs_language


def test_config_error_is_the_config_kind() -> None:
    with pytest.raises(ConfigError) as info:
        RuleSet.parse([{"when": {"x": 1}, "use": {"route": "r"}}], where=WHERE)
    assert info.value.code == "config_error"
