"""The Anthropic adapter: OpenAI request -> Messages request, Message and event streams ->
OpenAI objects the openai SDK accepts, and error classification."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import orjson
import pytest
from anthropic.types import (
    Base64ImageSourceParam,
    Base64PDFSourceParam,
    DocumentBlockParam,
    ImageBlockParam,
    Message,
    MetadataParam,
    RawMessageStreamEvent,
    TextBlockParam,
    ThinkingConfigEnabledParam,
    ToolChoiceAnyParam,
    ToolChoiceAutoParam,
    ToolChoiceNoneParam,
    ToolChoiceToolParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
    URLImageSourceParam,
)
from anthropic.types.message_create_params import MessageCreateParamsBase
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from thrifty.core.clock import FakeClock
from thrifty.core.request import ChatRequest
from thrifty.core.usage import Usage
from thrifty.errors import (
    InvalidRequest,
    PayloadTooLarge,
    RateLimited,
    ThriftyError,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from thrifty.pricing.price import ModelInfo, Price
from thrifty.providers.anthropic import AnthropicAdapter
from thrifty.providers.base import Target, WireAdapter
from thrifty.providers.registry import adapter_for
from thrifty.providers.sse import SSEParser

NOW = 1_700_000_000
KEY = "sk-ant-test-0123456789"
INFO = ModelInfo(
    provider="anthropic", model="claude-sonnet-4-5", price=Price.of(3, 15),
    context_window=200_000, max_output=64_000,
    capabilities=frozenset({"tools", "vision", "reasoning", "streaming"}),
)
TARGET = Target(
    model="claude", provider="anthropic", wire="anthropic", upstream_model="claude-sonnet-4-5",
    base_url="https://api.anthropic.com/", info=INFO, api_key=KEY, auth="x-api-key",
)
ADAPTER = AnthropicAdapter(clock=FakeClock(NOW))
HELLO = [{"role": "user", "content": "Hello"}]


def chat(messages: list[dict[str, Any]] | None = None, **params: Any) -> ChatRequest:
    body = {"model": "claude", "messages": messages or HELLO, **params}
    return ChatRequest(body=body, model="claude", stream=False, include_usage=False,
                       request_id="thr-018f2a3b4c5d0123456789abcdef")


def keys(typed_dict: Any) -> frozenset[str]:
    return frozenset(typed_dict.__required_keys__ | typed_dict.__optional_keys__)


BLOCKS = {"text": TextBlockParam, "image": ImageBlockParam, "document": DocumentBlockParam,
          "tool_use": ToolUseBlockParam, "tool_result": ToolResultBlockParam}
SOURCES = {("image", "base64"): Base64ImageSourceParam, ("image", "url"): URLImageSourceParam,
           ("document", "base64"): Base64PDFSourceParam}
CHOICES = {"auto": ToolChoiceAutoParam, "any": ToolChoiceAnyParam, "tool": ToolChoiceToolParam,
           "none": ToolChoiceNoneParam}


def assert_fits(obj: dict[str, Any], typed_dict: Any) -> None:
    assert typed_dict.__required_keys__ <= obj.keys() <= keys(typed_dict), (obj, typed_dict)


def assert_anthropic_wire(body: dict[str, Any]) -> None:
    """Every field name checked against the anthropic SDK's request types. The SDK's 2.x
    types omit temperature/top_p (API version 2026-10-21 rejects them); thrifty pins
    anthropic-version 2023-06-01, which accepts them."""
    assert body.keys() <= keys(MessageCreateParamsBase) | {"stream", "temperature", "top_p"}
    for block in body.get("system", []):
        assert_fits(block, TextBlockParam)
    for msg in body["messages"]:
        assert msg.keys() == {"role", "content"} and msg["role"] in ("user", "assistant")
        for block in msg["content"]:
            assert_fits(block, BLOCKS[block["type"]])
            if "source" in block:
                assert_fits(block["source"], SOURCES[block["type"], block["source"]["type"]])
    for tool in body.get("tools", []):
        assert_fits(tool, ToolParam)
    if "tool_choice" in body:
        assert_fits(body["tool_choice"], CHOICES[body["tool_choice"]["type"]])
    if "thinking" in body:
        assert_fits(body["thinking"], ThinkingConfigEnabledParam)
    if "metadata" in body:
        assert_fits(body["metadata"], MetadataParam)


def built(req: ChatRequest, target: Target = TARGET, *, stream: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(ADAPTER.build_request(req, target, stream=stream).body)
    assert_anthropic_wire(out)
    return out


# ---- request --------------------------------------------------------------------------------


def test_the_registry_serves_this_adapter_and_it_fits_the_protocol() -> None:
    adapter: WireAdapter = ADAPTER  # checked by mypy
    assert isinstance(adapter_for(adapter.wire), AnthropicAdapter)


def test_request_goes_to_messages_with_key_and_version() -> None:
    up = ADAPTER.build_request(chat(), TARGET, stream=True)
    assert up.url == "https://api.anthropic.com/v1/messages"
    assert up.headers["x-api-key"] == KEY
    assert up.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in up.headers
    body = orjson.loads(up.body)
    assert body["model"] == "claude-sonnet-4-5"
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert "stream" not in built(chat())


def test_system_and_developer_messages_become_system_blocks_keeping_cache_control() -> None:
    cached = {"type": "ephemeral"}
    body = built(chat([
        {"role": "system", "content": [{"type": "text", "text": "Be terse.",
                                        "cache_control": cached}]},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": "there", "cache_control": cached}]},
    ]))
    assert body["system"] == [
        {"type": "text", "text": "Be terse.", "cache_control": cached},
        {"type": "text", "text": "Answer in French."},
    ]
    # two consecutive user messages merge: Anthropic requires alternating roles
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Hi"},
        {"type": "text", "text": "there", "cache_control": cached},
    ]}]


TOOL_CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_1", "type": "function",
         "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
        {"id": "toolu_2", "type": "function",
         "function": {"name": "weather", "arguments": '{"city": "Rome"}'}},
    ]},
    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
    {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "24C"}]},
    {"role": "user", "content": "Which is warmer?"},
]


def test_tool_calls_and_results_map_to_tool_use_and_grouped_tool_results() -> None:
    assert built(chat(TOOL_CONVERSATION))["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C"},
            {"type": "text", "text": "Which is warmer?"},
        ]},
    ]


def test_invalid_tool_arguments_name_the_parameter() -> None:
    messages = [dict(m) for m in TOOL_CONVERSATION[:2]]
    messages[1]["tool_calls"] = [{"id": "t", "type": "function",
                                  "function": {"name": "weather", "arguments": "{city"}}]
    with pytest.raises(InvalidRequest) as info:
        built(chat(messages))
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


@pytest.mark.parametrize(
    ("part", "block"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                      "data": "iVBORw0KGgo="}}),
        ({"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
         {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}),
        ({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
         {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                         "data": "JVBERi0="}}),
    ],
)
def test_media_parts(part: dict[str, Any], block: dict[str, Any]) -> None:
    body = built(chat([{"role": "user", "content": [{"type": "text", "text": "What?"}, part]}]))
    assert body["messages"][0]["content"] == [{"type": "text", "text": "What?"}, block]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
         "messages[0].content[0].type"),
        ({"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}},
         "messages[0].content[0].image_url.url"),
        ({"type": "file", "file": {"file_id": "file-abc"}}, "messages[0].content[0].file"),
    ],
)
def test_unsupported_media_is_rejected_naming_the_part(part: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        built(chat([{"role": "user", "content": [part]}]))
    assert info.value.param == param


@pytest.mark.parametrize(
    ("params", "expected", "absent"),
    [
        ({"temperature": 1.7}, {"temperature": 1.0}, ()),
        ({"top_p": 0.9}, {"top_p": 0.9}, ("temperature",)),
        ({"temperature": 0.3, "top_p": 0.9}, {"temperature": 0.3}, ("top_p",)),  # not both
        ({"stop": "END"}, {"stop_sequences": ["END"]}, ()),
        ({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}, ()),
        ({"user": "user-42"}, {"metadata": {"user_id": "user-42"}}, ()),
        ({"max_tokens": 100}, {"max_tokens": 100}, ()),
        ({"max_completion_tokens": 200, "max_tokens": 100}, {"max_tokens": 200}, ()),
        ({}, {"max_tokens": 4096}, ("temperature", "top_p", "thinking", "tools", "system")),
        ({"max_tokens": 1_000_000}, {"max_tokens": 64_000}, ()),
        ({"seed": 1, "n": 1, "presence_penalty": 0.5, "frequency_penalty": 0.5,
          "logit_bias": {"42": 1}, "logprobs": True, "top_logprobs": 2}, {},
         ("seed", "n", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
          "top_logprobs")),
    ],
)
def test_parameters(params: dict[str, Any], expected: dict[str, Any], absent: tuple[str, ...]
                    ) -> None:
    body = built(chat(**params))
    assert {k: body.get(k) for k in expected} == expected
    assert not set(absent) & body.keys()


def test_several_choices_are_refused() -> None:
    with pytest.raises(InvalidRequest) as info:
        built(chat(n=2))
    assert info.value.param == "n"


def test_drop_params_of_the_target_apply() -> None:
    target = dataclasses.replace(TARGET, drop_params=frozenset({"temperature"}))
    assert "temperature" not in built(chat(temperature=0.5), target)


WEATHER_TOOL = {"type": "function", "function": {
    "name": "weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]},
}}


@pytest.mark.parametrize(
    ("params", "choice"),
    [
        ({}, None),
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": {"type": "function", "function": {"name": "weather"}}},
         {"type": "tool", "name": "weather"}),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        ({"tool_choice": "required", "parallel_tool_calls": False},
         {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tools_and_tool_choice(params: dict[str, Any], choice: dict[str, Any] | None) -> None:
    body = built(chat(tools=[WEATHER_TOOL], **params))
    assert body["tools"] == [{
        "name": "weather", "description": "Current weather",
        "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
    }]
    assert body.get("tool_choice") == choice


def test_a_tool_without_parameters_gets_an_empty_object_schema() -> None:
    tool = {"type": "function", "function": {"name": "now"}}
    assert built(chat(tools=[tool]))["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}]


def test_response_format_becomes_a_system_instruction() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = built(chat(
        [{"role": "system", "content": "Be kind."}, *HELLO],
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    ))
    assert body["system"][0] == {"type": "text", "text": "Be kind."}
    instruction = body["system"][1]["text"]
    assert "JSON" in instruction and orjson.dumps(schema).decode() in instruction
    plain = built(chat(response_format={"type": "json_object"}))["system"][0]["text"]
    assert "JSON object" in plain
    assert "system" not in built(chat(response_format={"type": "text"}))


@pytest.mark.parametrize(
    ("params", "thinking", "max_tokens"),
    [
        ({"reasoning_effort": "low"}, 1024, 4096 + 1024),
        ({"reasoning_effort": "medium"}, 4096, 4096 + 4096),
        ({"reasoning_effort": "high"}, 16384, 4096 + 16384),
        ({"reasoning_effort": "high", "max_tokens": 10_000}, 10_000 - 4096, 10_000),
        ({"reasoning_effort": "high", "max_tokens": 3000}, 1500, 3000),
        ({"reasoning_effort": "medium", "max_tokens": 2000}, None, 2000),  # no room to think
        ({"reasoning_effort": "minimal"}, None, 4096),
        ({"reasoning_effort": "low", "tool_choice": "required", "tools": [WEATHER_TOOL]},
         None, 4096),
    ],
)
def test_reasoning_effort_becomes_a_thinking_budget_below_max_tokens(
    params: dict[str, Any], thinking: int | None, max_tokens: int
) -> None:
    body = built(chat(temperature=0.2, **params))
    assert body["max_tokens"] == max_tokens
    if thinking is None:
        assert "thinking" not in body
        assert body["temperature"] == 0.2
    else:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": thinking}
        assert body["max_tokens"] > thinking
        assert "temperature" not in body  # Anthropic rejects temperature with thinking


def test_no_thinking_for_models_that_cannot_or_mid_tool_loop() -> None:
    plain = dataclasses.replace(TARGET, info=ModelInfo(
        "anthropic", "claude-3-5-haiku", Price.of(1, 5), 200_000, 8192, frozenset({"tools"})))
    assert "thinking" not in built(chat(reasoning_effort="high"), plain)
    in_loop = chat(TOOL_CONVERSATION[:4], reasoning_effort="high", tools=[WEATHER_TOOL])
    assert "thinking" not in built(in_loop)
    with pytest.raises(InvalidRequest) as info:
        built(chat(reasoning_effort="extreme"))
    assert info.value.param == "reasoning_effort"


# ---- response -------------------------------------------------------------------------------


def message(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "Hi!"}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6},
    }
    data = {**base, **fields}
    if data["stop_reason"] != "something_new":  # a value from a future API version
        Message.model_validate(data)  # the fixture is a real Message, per the SDK's types
    return orjson.dumps(data)


def test_parse_text_response() -> None:
    done = ADAPTER.parse_response(message(), chat(), TARGET)
    completion = ChatCompletion.model_validate(done.body)
    assert completion.id == "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL"
    assert completion.created == NOW
    assert completion.model == "claude-sonnet-4-5"
    assert completion.choices[0].message.content == "Hi!"
    assert completion.choices[0].finish_reason == "stop"
    assert done.finish_reason == "stop"
    assert done.usage == Usage(input_tokens=12, output_tokens=6)
    assert completion.usage is not None and completion.usage.total_tokens == 18


def test_parse_tool_use_thinking_and_cache_usage() -> None:
    body = message(
        content=[
            {"type": "thinking", "thinking": "Need the weather.", "signature": "EqQB"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01A", "name": "weather",
             "input": {"city": "Paris", "days": 2}},
        ],
        stop_reason="tool_use",
        usage={"input_tokens": 100, "output_tokens": 40, "cache_creation_input_tokens": 50,
               "cache_read_input_tokens": 1000},
    )
    done = ADAPTER.parse_response(body, chat(), TARGET)
    msg = ChatCompletion.model_validate(done.body).choices[0].message
    assert msg.content == "Let me check."
    assert msg.tool_calls is not None and len(msg.tool_calls) == 1
    call = msg.tool_calls[0]
    assert call.id == "toolu_01A" and call.function.name == "weather"  # type: ignore[union-attr]
    assert orjson.loads(call.function.arguments) == {"city": "Paris", "days": 2}  # type: ignore[union-attr]
    assert done.body["choices"][0]["message"]["reasoning_content"] == "Need the weather."
    assert done.finish_reason == "tool_calls"
    # Anthropic's input_tokens excludes cache reads and writes; thrifty's includes them
    assert done.usage == Usage(input_tokens=1150, output_tokens=40, cached_input_tokens=1000,
                               cache_write_tokens=50)
    assert done.body["usage"]["prompt_tokens_details"]["cached_tokens"] == 1000


def test_tool_only_answer_has_null_content_and_thinking_tokens_when_reported() -> None:
    body = message(
        content=[{"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}],
        stop_reason="tool_use",
        usage={"input_tokens": 5, "output_tokens": 30,
               "output_tokens_details": {"thinking_tokens": 20}},
    )
    done = ADAPTER.parse_response(body, chat(), TARGET)
    assert done.body["choices"][0]["message"]["content"] is None
    assert done.usage is not None and done.usage.reasoning_tokens == 20


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
     ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop"),
     ("model_context_window_exceeded", "length"), ("something_new", "stop")],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    assert ADAPTER.parse_response(message(stop_reason=stop_reason), chat(),
                                  TARGET).finish_reason == finish


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", orjson.dumps({"id": "msg_1"})])
def test_malformed_responses(body: bytes) -> None:
    with pytest.raises(UpstreamBadResponse):
        ADAPTER.parse_response(body, chat(), TARGET)


# ---- stream ---------------------------------------------------------------------------------


STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    for name, data in events:  # fixtures are real stream events, per the SDK's types
        if name not in ("error", "ping"):  # not part of the SDK union
            assert STREAM_EVENT.validate_python(data).type == name
    return b"".join(
        f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n" for name, data in events
    )


TOOL_STREAM = sse(
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 472, "output_tokens": 2, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 300}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "Okay, let"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "'s check."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "weather",
        "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta",
                                       "partial_json": '{"city": "San'}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta",
                                       "partial_json": ' Francisco"}'}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {
        "type": "tool_use", "id": "toolu_02", "name": "time", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2,
                             "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ("message_delta", {"type": "message_delta",
                       "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                       "usage": {"output_tokens": 89}}),
    ("message_stop", {"type": "message_stop"}),
)


def decode(raw: bytes, split: int = 7) -> tuple[Any, list[dict[str, Any]]]:
    """Feed ``raw`` through the SSE parser in ``split``-byte pieces, like a network would."""
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    parser = SSEParser()
    chunks: list[dict[str, Any]] = []
    for i in range(0, len(raw), split):
        for ev in parser.feed(raw[i:i + split]):
            chunks.extend(decoder.feed(ev.event, ev.data))
    for ev in parser.flush():
        chunks.extend(decoder.feed(ev.event, ev.data))
    return decoder, chunks


def test_stream_with_text_and_two_tool_calls() -> None:
    decoder, chunks = decode(TOOL_STREAM)
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U"}
    assert {c["created"] for c in chunks} == {NOW}
    assert {c["model"] for c in chunks} == {"claude-sonnet-4-5"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Okay, let"}
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:] if c["choices"])
    final = state.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == "Okay, let's check."
    assert msg.tool_calls is not None
    assert [(t.id, t.function.name, t.function.arguments) for t in msg.tool_calls] == [
        ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "weather", '{"city": "San Francisco"}'),
        ("toolu_02", "time", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 772
    assert chunks[-1]["usage"]["completion_tokens"] == 89
    assert decoder.usage == Usage(input_tokens=772, output_tokens=89, cached_input_tokens=300)
    assert decoder.finish_reason == "tool_calls"
    assert decoder.done


def test_stream_is_done_only_at_message_stop() -> None:
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    events = [(ev.event, ev.data) for ev in SSEParser().feed(TOOL_STREAM)]
    for name, data in events[:-1]:
        decoder.feed(name, data)
    assert not decoder.done and decoder.finish_reason == "tool_calls"
    assert decoder.feed(*events[-1])[-1]["choices"] == []
    assert decoder.done


THINKING_STREAM = sse(
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_think", "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-5", "usage": {"input_tokens": 20, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "thinking", "thinking": "",
                                               "signature": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "thinking_delta", "thinking": "2+2 is 4."}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1,
                             "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "text_delta", "text": "4"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                       "usage": {"output_tokens": 30}}),
    ("message_stop", {"type": "message_stop"}),
)


def test_stream_with_thinking() -> None:
    decoder, chunks = decode(THINKING_STREAM, split=3)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "reasoning_content": "2+2 is 4."}
    assert "".join(d.get("content") or "" for d in deltas) == "4"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert decoder.usage == Usage(input_tokens=20, output_tokens=30)


@pytest.mark.parametrize(
    ("etype", "error"),
    [("overloaded_error", UpstreamUnavailable), ("rate_limit_error", RateLimited),
     ("api_error", UpstreamUnavailable), ("something_new", UpstreamUnavailable)],
)
def test_stream_error_events_are_classified(etype: str, error: type[ThriftyError]) -> None:
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    raw = sse(("error", {"type": "error", "error": {"type": etype, "message": "Overloaded"}}))
    with pytest.raises(error) as info:
        for ev in SSEParser().feed(raw):
            decoder.feed(ev.event, ev.data)
    assert info.value.retryable
    assert info.value.provider == "anthropic"


# ---- errors ---------------------------------------------------------------------------------


def error_body(etype: str, message: str = "boom") -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": etype, "message": message},
                         "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (529, error_body("overloaded_error", "Overloaded"), UpstreamUnavailable, True),
        (413, error_body("request_too_large"), PayloadTooLarge, False),
        (400, error_body("invalid_request_error", "prompt is too long: 210000 tokens"),
         InvalidRequest, False),
        (401, error_body("authentication_error"), UpstreamAuthFailed, False),
        (403, error_body("permission_error"), UpstreamAuthFailed, False),
        (402, error_body("billing_error"), UpstreamAuthFailed, False),
        (404, error_body("not_found_error"), UpstreamBadResponse, True),
        (429, error_body("rate_limit_error"), RateLimited, True),
        (500, error_body("api_error"), UpstreamUnavailable, True),
        (504, error_body("timeout_error"), UpstreamTimeout, True),
        (502, b"<html>Bad gateway</html>", UpstreamUnavailable, True),
    ],
)
def test_classify_error(status: int, body: bytes, error: type[ThriftyError], retryable: bool
                        ) -> None:
    err = ADAPTER.classify_error(status, {}, body, TARGET)
    assert type(err) is error
    assert err.retryable is retryable
    assert err.provider == "anthropic"


def test_classify_error_reads_retry_after_and_hides_the_key() -> None:
    err = ADAPTER.classify_error(429, {"retry-after": "7"},
                                 error_body("rate_limit_error", f"slow down {KEY}"), TARGET)
    assert err.retry_after == 7.0
    assert KEY not in err.message and "[redacted]" in err.message


# ---- properties -----------------------------------------------------------------------------

EVENT_NAMES = st.sampled_from([None, "message_start", "content_block_start",
                               "content_block_delta", "message_delta", "message_stop", "error",
                               "ping"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["type", "index", "message", "content_block", "delta", "usage", "id",
                          "text", "partial_json", "thinking", "stop_reason", "name", "error",
                          "input_tokens", "output_tokens"])


def shaped(depth: int = 2) -> st.SearchStrategy[Any]:
    """Dicts with Anthropic's field names (and sometimes its type values) at any level."""
    leaf = JSON | st.sampled_from(["text", "tool_use", "thinking", "text_delta",
                                   "input_json_delta", "thinking_delta", "end_turn"])
    if depth == 0:
        return leaf
    return st.dictionaries(FIELDS, shaped(depth - 1) | leaf, max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(EVENT_NAMES, st.binary(max_size=40)), max_size=6))
def test_decoder_raises_only_thrifty_errors_on_arbitrary_bytes(
    events: list[tuple[str | None, bytes]]
) -> None:
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    for name, data in events:
        with contextlib.suppress(ThriftyError):  # anything else fails the test
            decoder.feed(name, data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(EVENT_NAMES, st.sampled_from(
    ["message_start", "content_block_start", "content_block_delta", "message_delta",
     "message_stop", "error", "ping"]), shaped()), max_size=8))
def test_decoder_on_malformed_events_raises_thrifty_errors_or_emits_valid_chunks(
    events: list[tuple[str | None, str, dict[str, Any]]]
) -> None:
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    for name, kind, fields in events:
        try:
            chunks = decoder.feed(name, orjson.dumps({**fields, "type": kind}))
        except ThriftyError:
            continue
        for chunk in chunks:
            ChatCompletionChunk.model_validate(chunk)
