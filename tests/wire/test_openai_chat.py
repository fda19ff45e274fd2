"""Ingress validation: every bad field is a 400 naming its exact param; good bodies pass
through untouched (unknown fields included)."""

from __future__ import annotations

import orjson
import pytest

from thrifty.errors import InvalidRequest
from thrifty.wire.openai_chat import parse_chat_request

OK = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def parse(body: object):
    return parse_chat_request(orjson.dumps(body), "rid")


def test_valid_body_keeps_unknown_fields_and_reads_stream_flags() -> None:
    req = parse({**OK, "stream": True, "stream_options": {"include_usage": True},
                 "vendor_thing": {"x": 1}, "user": "u1"})
    assert req.stream and req.include_usage
    assert req.body["vendor_thing"] == {"x": 1}
    assert req.user == "u1"
    assert req.model == "m"


def test_thrifty_extension_is_removed_from_the_forwarded_body() -> None:
    req = parse({**OK, "thrifty": {"tags": ["a", "b"], "metadata": {"team": "x"},
                                   "timeout_s": 5}})
    assert "thrifty" not in req.body
    assert req.options.tags == ("a", "b")
    assert req.options.metadata == {"team": "x"}
    assert req.options.timeout_s == 5.0


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{not json", None),
        (b"[1,2]", None),
        (orjson.dumps({"messages": []}), "model"),
        (orjson.dumps({"model": 3, "messages": []}), "model"),
        (orjson.dumps({"model": "m"}), "messages"),
        (orjson.dumps({"model": "m", "messages": "hi"}), "messages"),
        (orjson.dumps({"model": "m", "messages": []}), "messages"),
        (orjson.dumps({**OK, "temperature": "hot"}), "temperature"),
        (orjson.dumps({**OK, "temperature": 3}), "temperature"),
        (orjson.dumps({**OK, "top_p": True}), "top_p"),
        (orjson.dumps({**OK, "max_tokens": 1.5}), "max_tokens"),
        (orjson.dumps({**OK, "max_completion_tokens": 0}), "max_completion_tokens"),
        (orjson.dumps({**OK, "n": 2}), "n"),
        (orjson.dumps({**OK, "stream": "yes"}), "stream"),
        (orjson.dumps({**OK, "stream_options": {"include_usage": 1}}),
         "stream_options.include_usage"),
        (orjson.dumps({**OK, "stop": [1]}), "stop[0]"),
        (orjson.dumps({**OK, "seed": "1"}), "seed"),
        (orjson.dumps({**OK, "tools": [{"type": "function"}]}), "tools[0].function"),
        (orjson.dumps({**OK, "tools": [{"type": "function", "function": {"name": 1}}]}),
         "tools[0].function.name"),
        (orjson.dumps({**OK, "tool_choice": "sometimes"}), "tool_choice"),
        (orjson.dumps({**OK, "response_format": {"type": "yaml"}}), "response_format.type"),
        (orjson.dumps({**OK, "response_format": {"type": "json_schema"}}),
         "response_format.json_schema"),
        (orjson.dumps({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
         "messages[0].role"),
        (orjson.dumps({"model": "m", "messages": [{"role": "user"}]}), "messages[0].content"),
        (orjson.dumps({"model": "m", "messages": [{"role": "user", "content": 5}]}),
         "messages[0].content"),
        (orjson.dumps({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": 7}}]}]}),
         "messages[0].content[0].image_url.url"),
        (orjson.dumps({"model": "m", "messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}]}),
         "messages[0].tool_calls[0].function.arguments"),
        (orjson.dumps({"model": "m", "messages": [{"role": "tool", "content": "r"}]}),
         "messages[0].tool_call_id"),
        (orjson.dumps({**OK, "thrifty": {"timeout_s": -1}}), "thrifty.timeout_s"),
        (orjson.dumps({**OK, "thrifty": {"metadata": {"k": 1}}}), "thrifty.metadata.k"),
    ],
)
def test_bad_bodies_name_the_param(raw: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(raw, "rid")
    assert info.value.param == param
    assert info.value.status == 400
    body = info.value.to_openai()["error"]
    assert body["type"] == "invalid_request_error"
    assert body["message"]


def test_assistant_with_tool_calls_and_null_content_is_valid() -> None:
    req = parse({"model": "m", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]})
    assert len(req.body["messages"]) == 3
