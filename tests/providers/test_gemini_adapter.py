"""The Gemini adapter: OpenAI request -> GenerateContentRequest, responses and SSE chunks ->
OpenAI objects the openai SDK accepts, and Google RPC error classification."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import orjson
import pytest
from google.genai import types as genai
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from thrifty.core.clock import FakeClock
from thrifty.core.request import ChatRequest
from thrifty.core.usage import Usage
from thrifty.errors import (
    InvalidRequest,
    RateLimited,
    ThriftyError,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from thrifty.pricing.price import ModelInfo, Price
from thrifty.providers.base import Target, WireAdapter
from thrifty.providers.gemini import REPLAY_SIGNATURE, GeminiAdapter, gemini_schema
from thrifty.providers.registry import adapter_for
from thrifty.providers.sse import SSEParser

NOW = 1_700_000_000
KEY = "AIzaSy-test-0123456789"
INFO = ModelInfo(
    provider="gemini", model="gemini-2.5-flash", price=Price.of("0.3", "2.5"),
    context_window=1_048_576, max_output=65_536,
    capabilities=frozenset({"tools", "vision", "reasoning", "json_schema", "streaming"}),
)
TARGET = Target(
    model="flash", provider="gemini", wire="gemini", upstream_model="gemini-2.5-flash",
    base_url="https://generativelanguage.googleapis.com", info=INFO, api_key=KEY,
    auth="x-goog-api-key",
)
ADAPTER = GeminiAdapter(clock=FakeClock(NOW))
HELLO = [{"role": "user", "content": "Hello"}]
REQUEST_ID = "thr-018f2a3b4c5d0123456789abcdef"


def chat(messages: list[dict[str, Any]] | None = None, **params: Any) -> ChatRequest:
    body = {"model": "flash", "messages": messages or HELLO, **params}
    return ChatRequest(body=body, model="flash", stream=False, include_usage=False,
                       request_id=REQUEST_ID)


def assert_gemini_wire(body: dict[str, Any]) -> None:
    """Every field name checked against google-genai's types, which forbid unknown fields
    and read the REST body's camelCase names as aliases."""
    assert body.keys() <= {"contents", "systemInstruction", "tools", "toolConfig",
                           "generationConfig"}
    raw = orjson.dumps  # JSON mode, so bytes fields (thoughtSignature) decode as base64
    for content in [*body["contents"], body.get("systemInstruction", {"parts": []})]:
        genai.Content.model_validate_json(raw(content))
    for tool in body.get("tools", []):
        genai.Tool.model_validate_json(raw(tool))
    genai.ToolConfig.model_validate_json(raw(body.get("toolConfig", {})))
    genai.GenerationConfig.model_validate_json(raw(body.get("generationConfig", {})))


def built(req: ChatRequest, target: Target = TARGET) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(ADAPTER.build_request(req, target, stream=False).body)
    assert_gemini_wire(out)
    return out


def with_info(info: ModelInfo) -> Target:
    return dataclasses.replace(TARGET, info=info)


# ---- request --------------------------------------------------------------------------------


def test_the_registry_serves_this_adapter_and_it_fits_the_protocol() -> None:
    adapter: WireAdapter = ADAPTER  # checked by mypy
    assert isinstance(adapter_for(adapter.wire), GeminiAdapter)


def test_urls_and_key_header() -> None:
    up = ADAPTER.build_request(chat(), TARGET, stream=False)
    assert up.url == ("https://generativelanguage.googleapis.com/v1beta/models/"
                      "gemini-2.5-flash:generateContent")
    assert up.headers["x-goog-api-key"] == KEY
    assert "authorization" not in up.headers
    streamed = ADAPTER.build_request(chat(), TARGET, stream=True)
    assert streamed.url.endswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert orjson.loads(streamed.body) == orjson.loads(up.body)  # the body does not change
    tuned = dataclasses.replace(TARGET, upstream_model="tunedModels/mine")
    assert "/v1beta/tunedModels/mine:generateContent" in ADAPTER.build_request(
        chat(), tuned, stream=False).url


def test_system_roles_and_merging() -> None:
    body = built(chat([
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "there"},
        {"role": "assistant", "content": "Salut"},
    ]))
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."},
                                                   {"text": "Answer in French."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}, {"text": "there"}]},
        {"role": "model", "parts": [{"text": "Salut"}]},
    ]
    assert "generationConfig" not in body and "tools" not in body


TOOL_CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "call_a", "type": "function",
         "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_b", "type": "function",
         "function": {"name": "forecast", "arguments": '{"city": "Rome"}'}},
    ]},
    {"role": "tool", "tool_call_id": "call_b", "content": '{"temp": 24}'},
    {"role": "tool", "tool_call_id": "call_a", "content": "18C and sunny"},
]


def test_tool_calls_and_results_become_function_call_and_response_parts() -> None:
    assert built(chat(TOOL_CONVERSATION))["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
        {"role": "model", "parts": [
            {"text": "Checking."},
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}},
             "thoughtSignature": REPLAY_SIGNATURE},
            {"functionCall": {"name": "forecast", "args": {"city": "Rome"}}},
        ]},
        {"role": "user", "parts": [
            # the name comes from the earlier call; a JSON object result is passed as is
            {"functionResponse": {"name": "forecast", "response": {"temp": 24}}},
            {"functionResponse": {"name": "weather", "response": {"content": "18C and sunny"}}},
        ]},
    ]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([*TOOL_CONVERSATION[:2], {"role": "tool", "tool_call_id": "call_zzz", "content": "x"}],
         "messages[2].tool_call_id"),
        ([HELLO[0], {"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}],
         "messages[1].tool_calls[0].function.arguments"),
        ([{"role": "function", "name": "f", "content": "x"}], "messages[0].role"),
    ],
)
def test_bad_tool_history_names_the_parameter(messages: list[dict[str, Any]], param: str
                                              ) -> None:
    with pytest.raises(InvalidRequest) as info:
        built(chat(messages))
    assert info.value.param == param


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
         {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}}),
        ({"type": "image_url", "image_url": {"url": "https://example.com/a/cat.PNG?x=1"}},
         {"fileData": {"fileUri": "https://example.com/a/cat.PNG?x=1", "mimeType": "image/png"}}),
        ({"type": "image_url", "image_url": {"url": "https://example.com/photo"}},
         {"fileData": {"fileUri": "https://example.com/photo", "mimeType": "image/jpeg"}}),
        ({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
         {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}),
        ({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
         {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}),
    ],
)
def test_media_parts(part: dict[str, Any], expected: dict[str, Any]) -> None:
    body = built(chat([{"role": "user", "content": [{"type": "text", "text": "What?"}, part]}]))
    assert body["contents"][0]["parts"] == [{"text": "What?"}, expected]


@pytest.mark.parametrize(
    ("params", "config"),
    [
        ({"temperature": 1.5, "top_p": 0.9, "seed": 7},
         {"temperature": 1.5, "topP": 0.9, "seed": 7}),
        ({"max_tokens": 100}, {"maxOutputTokens": 100}),
        ({"max_completion_tokens": 300, "max_tokens": 100}, {"maxOutputTokens": 300}),
        ({"stop": "END"}, {"stopSequences": ["END"]}),
        ({"presence_penalty": 0.5, "frequency_penalty": -0.5},
         {"presencePenalty": 0.5, "frequencyPenalty": -0.5}),
        ({"response_format": {"type": "json_object"}}, {"responseMimeType": "application/json"}),
        ({"response_format": {"type": "text"}}, None),
        ({"user": "u1", "logit_bias": {"1": 2}, "logprobs": True, "n": 1,
          "parallel_tool_calls": False}, None),
        ({"reasoning_effort": "low"}, {"thinkingConfig": {"thinkingBudget": 1024,
                                                          "includeThoughts": False}}),
        ({"reasoning_effort": "none"}, {"thinkingConfig": {"thinkingBudget": 0,
                                                           "includeThoughts": False}}),
    ],
)
def test_generation_config(params: dict[str, Any], config: dict[str, Any] | None) -> None:
    body = built(chat(**params))
    assert body.get("generationConfig") == config
    assert set(body) <= {"contents", "generationConfig"}


def test_json_schema_response_format_is_cut_to_gemini_schema() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object", "additionalProperties": False,
        "properties": {"answer": {"type": ["string", "null"]},
                       "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}}},
        "required": ["answer"],
        "$defs": {"Tag": {"type": "string", "enum": ["a", "b"], "format": "uri"}},
    }
    rf = {"type": "json_schema", "json_schema": {"name": "out", "strict": True, "schema": schema}}
    config = built(chat(response_format=rf))["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseSchema": {
        "type": "OBJECT", "required": ["answer"],
        "properties": {"answer": {"type": "STRING", "nullable": True},
                       "tags": {"type": "ARRAY", "items": {"type": "STRING",
                                                           "enum": ["a", "b"]}}},
    }}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "n"},
         {"type": "INTEGER", "nullable": True, "description": "n"}),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]},
         {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}),
        ({"type": "string", "const": "fixed"}, {"type": "STRING", "enum": ["fixed"]}),
        ({"type": "integer", "enum": [1, 2]}, {"type": "INTEGER"}),
        ({"type": "object", "properties": {}}, {"type": "OBJECT"}),
        ({"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {
            "next": {"$ref": "#/$defs/Node"}}}}}, None),  # recursive: must terminate
    ],
)
def test_gemini_schema(schema: dict[str, Any], expected: dict[str, Any] | None) -> None:
    out = gemini_schema(schema)
    if expected is None:
        assert out["type"] == "OBJECT" and "next" in out["properties"]
    else:
        assert out == expected


WEATHER_TOOL = {"type": "function", "function": {
    "name": "weather", "description": "Current weather", "strict": True,
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}


@pytest.mark.parametrize(
    ("choice", "tool_config"),
    [
        (None, None),
        ("auto", {"functionCallingConfig": {"mode": "AUTO"}}),
        ("required", {"functionCallingConfig": {"mode": "ANY"}}),
        ("none", {"functionCallingConfig": {"mode": "NONE"}}),
        ({"type": "function", "function": {"name": "weather"}},
         {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}}),
    ],
)
def test_tools_and_tool_choice(choice: Any, tool_config: dict[str, Any] | None) -> None:
    params = {"tools": [WEATHER_TOOL, {"type": "function", "function": {"name": "now"}}]}
    if choice is not None:
        params["tool_choice"] = choice
    body = built(chat(**params))
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "weather", "description": "Current weather",
         "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}},
                        "required": ["city"]}},
        {"name": "now"},
    ]}]
    assert body.get("toolConfig") == tool_config


def test_refusals() -> None:
    with pytest.raises(InvalidRequest) as info:
        built(chat(n=3))
    assert info.value.param == "n"
    with pytest.raises(InvalidRequest) as info:
        built(chat(tools=[{"type": "custom", "custom": {"name": "x"}}]))
    assert info.value.param == "tools[0]"


def test_no_thinking_config_for_models_without_reasoning() -> None:
    old = with_info(ModelInfo("gemini", "gemini-2.0-flash", Price.of(0.1, 0.4), 1_048_576,
                              8192, frozenset({"tools"})))
    assert "generationConfig" not in built(chat(reasoning_effort="high"), old)


# ---- response -------------------------------------------------------------------------------


def response(parts: list[dict[str, Any]], finish: str | None = "STOP",
             **usage: int) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    data = {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                          "totalTokenCount": 15, **usage},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mJqxaPKQLq2Tz7IP0ri8qAQ",
    }
    genai.GenerateContentResponse.model_validate_json(orjson.dumps(data))  # a real response
    return data


def test_parse_text_skipping_thoughts_with_usage() -> None:
    body = response([{"text": "Thinking about it", "thought": True}, {"text": "Hello"},
                     {"text": " world"}], thoughtsTokenCount=40, cachedContentTokenCount=4,
                    toolUsePromptTokenCount=3)
    done = ADAPTER.parse_response(orjson.dumps(body), chat(), TARGET)
    completion = ChatCompletion.model_validate(done.body)
    assert completion.id == "chatcmpl-mJqxaPKQLq2Tz7IP0ri8qAQ"
    assert completion.created == NOW and completion.model == "gemini-2.5-flash"
    assert completion.choices[0].message.content == "Hello world"
    assert done.body["choices"][0]["message"]["reasoning_content"] == "Thinking about it"
    assert done.finish_reason == "stop"
    # thoughts are output (priced as such), reported apart from candidates
    assert done.usage == Usage(input_tokens=13, output_tokens=45, cached_input_tokens=4,
                               reasoning_tokens=40)
    assert completion.usage is not None and completion.usage.completion_tokens == 45


def test_parse_function_calls() -> None:
    body = response([
        {"functionCall": {"name": "weather", "args": {"city": "Paris"}},
         "thoughtSignature": "CiQB0e2KbA=="},
        {"functionCall": {"name": "now"}},
    ])
    done = ADAPTER.parse_response(orjson.dumps(body), chat(), TARGET)
    msg = ChatCompletion.model_validate(done.body).choices[0].message
    assert msg.content is None
    assert msg.tool_calls is not None
    calls = [(t.id, t.function.name, orjson.loads(t.function.arguments))  # type: ignore[union-attr]
             for t in msg.tool_calls]
    assert calls == [("call_xaPKQLq2Tz7IP0ri8qAQ_0", "weather", {"city": "Paris"}),
                     ("call_xaPKQLq2Tz7IP0ri8qAQ_1", "now", {})]
    assert all(len(t.id) <= 40 for t in msg.tool_calls)
    assert done.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
     ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
     ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
     ("MALFORMED_FUNCTION_CALL", "stop"), ("OTHER", "stop")],
)
def test_finish_reasons(finish: str, expected: str) -> None:
    done = ADAPTER.parse_response(orjson.dumps(response([{"text": "x"}], finish)), chat(), TARGET)
    assert done.finish_reason == expected


def test_blocked_prompt_is_a_content_filtered_completion() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "responseId": "blocked1"}
    genai.GenerateContentResponse.model_validate(body)
    done = ADAPTER.parse_response(orjson.dumps(body), chat(), TARGET)
    completion = ChatCompletion.model_validate(done.body)
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == ""
    assert done.usage == Usage(input_tokens=9)


@pytest.mark.parametrize("body", [b"{", b"[]", b"{}", orjson.dumps({"candidates": "x"})])
def test_malformed_responses(body: bytes) -> None:
    with pytest.raises(UpstreamBadResponse):
        ADAPTER.parse_response(body, chat(), TARGET)


# ---- stream ---------------------------------------------------------------------------------


def sse(*payloads: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(p) + b"\r\n\r\n" for p in payloads)


def partial(parts: list[dict[str, Any]], finish: str | None = None, **usage: int
            ) -> dict[str, Any]:
    return response(parts, finish, **usage)


STREAM = sse(
    partial([{"text": "The weather"}], candidatesTokenCount=2),
    partial([{"text": " is nice."}], candidatesTokenCount=5),
    partial([{"functionCall": {"name": "weather", "args": {"city": "Paris"}},
              "thoughtSignature": "CiQB"}], candidatesTokenCount=9),
    partial([{"functionCall": {"name": "now", "args": {}}}, {"text": ""}], "STOP",
            candidatesTokenCount=12, thoughtsTokenCount=30),
)


def decode(raw: bytes, split: int = 11) -> tuple[Any, list[dict[str, Any]]]:
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    parser = SSEParser()
    chunks: list[dict[str, Any]] = []
    for i in range(0, len(raw), split):
        for ev in parser.feed(raw[i:i + split]):
            chunks.extend(decoder.feed(ev.event, ev.data))
    for ev in parser.flush():
        chunks.extend(decoder.feed(ev.event, ev.data))
    return decoder, chunks


def test_stream_text_then_function_calls() -> None:
    decoder, chunks = decode(STREAM)
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    assert {c["id"] for c in chunks} == {"chatcmpl-mJqxaPKQLq2Tz7IP0ri8qAQ"}
    assert {c["created"] for c in chunks} == {NOW}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "The weather"}
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:] if c["choices"])
    final = state.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == "The weather is nice."
    assert msg.tool_calls is not None
    assert [(t.id, t.function.name, t.function.arguments) for t in msg.tool_calls] == [
        ("call_xaPKQLq2Tz7IP0ri8qAQ_0", "weather", '{"city":"Paris"}'),
        ("call_xaPKQLq2Tz7IP0ri8qAQ_1", "now", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 42
    assert decoder.usage == Usage(input_tokens=10, output_tokens=42, reasoning_tokens=30)
    assert decoder.finish_reason == "tool_calls" and decoder.done


def test_stream_is_done_only_with_a_finish_reason() -> None:
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    events = SSEParser().feed(STREAM)
    for ev in events[:-1]:
        decoder.feed(ev.event, ev.data)
    assert not decoder.done and decoder.finish_reason is None
    decoder.feed(events[-1].event, events[-1].data)
    assert decoder.done


def test_stream_blocked_prompt_ends_with_content_filter() -> None:
    decoder, chunks = decode(sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                                  "usageMetadata": {"promptTokenCount": 7},
                                  "responseId": "r1"}))
    assert decoder.done and decoder.finish_reason == "content_filter"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]] == [
        "content_filter"]
    assert chunks[-1]["usage"]["prompt_tokens"] == 7


@pytest.mark.parametrize(
    ("error", "expected"),
    [({"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"},
      UpstreamUnavailable),
     ({"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}, RateLimited),
     ({"code": 500, "message": "Internal", "status": "INTERNAL"}, UpstreamUnavailable)],
)
def test_stream_error_payloads_are_classified(error: dict[str, Any],
                                              expected: type[ThriftyError]) -> None:
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    with pytest.raises(expected):
        decoder.feed(None, orjson.dumps({"error": error}))


# ---- errors ---------------------------------------------------------------------------------


def google_error(code: int, status: str, *details: dict[str, Any], message: str = "boom"
                 ) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "status": status,
                                   "details": list(details)}})


KEY_INVALID = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
               "domain": "googleapis.com"}
RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (400, google_error(400, "INVALID_ARGUMENT", KEY_INVALID), UpstreamAuthFailed, False),
        (403, google_error(403, "PERMISSION_DENIED"), UpstreamAuthFailed, False),
        (401, google_error(401, "UNAUTHENTICATED"), UpstreamAuthFailed, False),
        (429, google_error(429, "RESOURCE_EXHAUSTED", RETRY_INFO), RateLimited, True),
        (503, google_error(503, "UNAVAILABLE"), UpstreamUnavailable, True),
        (504, google_error(504, "DEADLINE_EXCEEDED"), UpstreamTimeout, True),
        (400, google_error(400, "INVALID_ARGUMENT",
                           message="The input token count exceeds the maximum"),
         InvalidRequest, False),
        (404, google_error(404, "NOT_FOUND"), UpstreamBadResponse, True),
        (500, google_error(500, "INTERNAL"), UpstreamUnavailable, True),
        (502, b"<html>oops</html>", UpstreamUnavailable, True),
    ],
)
def test_classify_error(status: int, body: bytes, error: type[ThriftyError], retryable: bool
                        ) -> None:
    err = ADAPTER.classify_error(status, {}, body, TARGET)
    assert type(err) is error
    assert err.retryable is retryable
    assert err.provider == "gemini"


def test_rate_limit_waits_for_retry_info_unless_a_header_says() -> None:
    body = google_error(429, "RESOURCE_EXHAUSTED", RETRY_INFO, message=f"quota for {KEY}")
    err = ADAPTER.classify_error(429, {}, body, TARGET)
    assert err.retry_after == 37.0
    assert KEY not in err.message
    assert ADAPTER.classify_error(429, {"retry-after": "3"}, body, TARGET).retry_after == 3.0
    streamed = b"[" + body + b"]"  # streaming errors arrive as a one-element array
    assert ADAPTER.classify_error(429, {}, streamed, TARGET).retry_after == 37.0


# ---- properties -----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["candidates", "content", "parts", "text", "thought", "functionCall",
                          "name", "args", "id", "finishReason", "usageMetadata",
                          "promptTokenCount", "responseId", "promptFeedback", "blockReason",
                          "error", "code"])


def shaped(depth: int = 3) -> st.SearchStrategy[Any]:
    """JSON with Gemini's field names at any level, lists where Gemini has lists."""
    leaf = JSON | st.sampled_from(["STOP", "SAFETY", "MAX_TOKENS", "x"])
    if depth == 0:
        return leaf
    inner = shaped(depth - 1)
    return st.dictionaries(FIELDS, inner | st.lists(inner, max_size=2) | leaf, max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6))
def test_decoder_raises_only_thrifty_errors_on_arbitrary_bytes(events: list[bytes]) -> None:
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    for data in events:
        with contextlib.suppress(ThriftyError):  # anything else fails the test
            decoder.feed(None, data)


@settings(max_examples=200, deadline=None)
@given(st.lists(shaped(), max_size=6))
def test_decoder_on_malformed_chunks_raises_thrifty_errors_or_emits_valid_chunks(
    payloads: list[dict[str, Any]]
) -> None:
    decoder = ADAPTER.stream_decoder(chat(), TARGET)
    for payload in payloads:
        try:
            chunks = decoder.feed(None, orjson.dumps(payload))
        except ThriftyError:
            continue
        for chunk in chunks:
            ChatCompletionChunk.model_validate(chunk)
