"""The format check: JSON mode, JSON schema, tool-call arguments, forced tool calls."""

from typing import Any

from thrifty.routing.answer import Answer, ToolCall
from thrifty.routing.checks import CheckContext, FormatCheck, FormatConfig

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer", "minimum": 0}},
          "required": ["name", "age"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


def run(text: str, request: dict[str, Any], calls: tuple[ToolCall, ...] = (),
        config: FormatConfig | None = None) -> tuple[bool, str]:
    answer = Answer("m", text, "stop", calls)
    result = FormatCheck(config or FormatConfig()).run(CheckContext(request, [answer]))
    assert result.name == "format"
    return result.passed, result.detail


def json_schema_request() -> dict[str, Any]:
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": "person", "schema": SCHEMA}}}


def test_no_format_requested_passes() -> None:
    assert run("just prose", {}) == (True, "no JSON mode or tools requested")


def test_json_object_mode() -> None:
    request = {"response_format": {"type": "json_object"}}
    assert run('{"a": 1}', request)[0]
    ok, detail = run("{'a': 1}", request)
    assert not ok and "not valid JSON" in detail
    ok, detail = run("[1, 2]", request)
    assert not ok and "needs an object" in detail


def test_fenced_json_fails_json_mode_and_says_why() -> None:
    ok, detail = run('```json\n{"a": 1}\n```', {"response_format": {"type": "json_object"}})
    assert not ok and "fenced" in detail


def test_json_schema_valid_and_invalid() -> None:
    assert run('{"name": "Ada", "age": 36}', json_schema_request())[0]
    ok, detail = run('{"name": "Ada", "age": -1}', json_schema_request())
    assert not ok and "age" in detail and "minimum" in detail
    ok, detail = run('{"name": "Ada"}', json_schema_request())
    assert not ok and "'age' is a required property" in detail


def test_schema_validation_can_be_turned_off() -> None:
    config = FormatConfig(json_schema=False)
    assert run('{"name": "Ada"}', json_schema_request(), config=config)[0]
    assert not run("nope", json_schema_request(), config=config)[0]


def test_an_invalid_request_schema_is_not_the_answers_fault() -> None:
    request = {"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "no-such-type"}}}}
    assert run('{"a": 1}', request)[0]


def test_tool_call_arguments_validated_against_parameters() -> None:
    request = {"tools": TOOLS}
    good = (ToolCall("get_weather", '{"city": "Oslo"}'),)
    assert run("", request, good)[0]
    ok, detail = run("", request, (ToolCall("get_weather", '{"town": "Oslo"}'),))
    assert not ok and "'city' is a required property" in detail
    ok, detail = run("", request, (ToolCall("get_weather", '{"city": '),))
    assert not ok and "not JSON" in detail
    ok, detail = run("", request, (ToolCall("get_weather", "[1]"),))
    assert not ok and "not a JSON object" in detail
    ok, detail = run("", request, (ToolCall("launch", "{}"),))
    assert not ok and "unknown tool 'launch'" in detail


def test_forced_tool_choice_without_a_call_fails() -> None:
    assert not run("I'd rather talk", {"tools": TOOLS, "tool_choice": "required"})[0]
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert not run("text", {"tools": TOOLS, "tool_choice": named})[0]
    assert run("text", {"tools": TOOLS, "tool_choice": "auto"})[0]


def test_tool_only_answer_skips_the_json_text_check() -> None:
    request = {"response_format": {"type": "json_object"}, "tools": TOOLS}
    assert run("", request, (ToolCall("get_weather", '{"city": "Rome"}'),))[0]
