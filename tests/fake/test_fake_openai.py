"""The OpenAI fake, driven by the official ``openai`` SDK over real HTTP."""

from __future__ import annotations

import json

import aiohttp
import httpx2
import openai
import pytest
from pydantic import BaseModel

from thrifty.fake import RunningFake, start_fake

USER = [{"role": "user", "content": "Tell me something about gateways."}]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"},
                       "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}},
]


async def test_completion_text_usage_and_stats(
    oa: openai.AsyncOpenAI, oa_fake: RunningFake
) -> None:
    r = await oa.chat.completions.create(model="gpt-4o-mini", messages=USER)
    choice = r.choices[0]
    assert r.object == "chat.completion" and r.model == "gpt-4o-mini"
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content and 20 <= len(choice.message.content.split()) <= 80
    assert r.usage is not None
    assert r.usage.prompt_tokens == 3 + (len(USER[0]["content"]) + 3) // 4
    assert r.usage.completion_tokens == len(choice.message.content.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    [served] = oa_fake.stats.served
    assert served.model == "gpt-4o-mini"
    assert served.reported == r.usage.model_dump(exclude_none=True)
    assert oa_fake.stats.outcomes == {"ok": 1}


async def test_same_seed_same_reply_other_seed_other_reply(oa: openai.AsyncOpenAI) -> None:
    first = await oa.chat.completions.create(model="m", messages=USER)
    again = await oa.chat.completions.create(model="m", messages=USER)
    assert first.choices[0].message.content == again.choices[0].message.content
    async with await start_fake("openai", seed=2) as other:
        client = openai.AsyncOpenAI(base_url=other.base_url + "/v1", api_key="x", max_retries=0)
        r = await client.chat.completions.create(model="m", messages=USER)
        assert r.choices[0].message.content != first.choices[0].message.content


async def test_stream_with_usage_assembles_the_same_text(oa: openai.AsyncOpenAI) -> None:
    whole = await oa.chat.completions.create(model="m", messages=USER)
    stream = await oa.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_usage_has_no_usage_chunk(oa: openai.AsyncOpenAI) -> None:
    stream = await oa.chat.completions.create(model="m", messages=USER, stream=True)
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


async def test_tool_calls_single_and_parallel(oa: openai.AsyncOpenAI) -> None:
    one = await oa.chat.completions.create(model="m", messages=USER, tools=TOOLS)
    assert one.choices[0].finish_reason == "tool_calls"
    assert one.choices[0].message.content is None
    [call] = one.choices[0].message.tool_calls or []
    args = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and args["unit"] in ("c", "f")
    assert call.id.startswith("call_")
    both = await oa.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "check both in parallel"}], tools=TOOLS
    )
    names = [c.function.name for c in both.choices[0].message.tool_calls or []]
    assert names == ["get_weather", "get_time"]
    forced = await oa.chat.completions.create(
        model="m", messages=USER, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert forced.choices[0].message.tool_calls[0].function.name == "get_time"


async def test_streamed_tool_calls_assemble_in_the_sdk_helper(oa: openai.AsyncOpenAI) -> None:
    async with oa.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "parallel please"}], tools=TOOLS,
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert set(json.loads(calls[1].function.arguments)) == {"tz"}


async def test_tool_result_is_mentioned_in_the_answer(oa: openai.AsyncOpenAI) -> None:
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and raining"},
    ]
    r = await oa.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    assert r.choices[0].finish_reason == "stop"
    assert "18C and raining" in (r.choices[0].message.content or "")


class Answer(BaseModel):
    title: str
    score: int
    tags: list[str]


async def test_structured_outputs(oa: openai.AsyncOpenAI) -> None:
    parsed = await oa.chat.completions.parse(model="m", messages=USER, response_format=Answer)
    assert isinstance(parsed.choices[0].message.parsed, Answer)
    obj = await oa.chat.completions.create(
        model="m", messages=USER, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(obj.choices[0].message.content or ""), dict)


async def test_cached_tokens_on_a_repeated_long_prompt(oa: openai.AsyncOpenAI) -> None:
    system = {"role": "system", "content": "You are a careful assistant. " * 200}
    first = await oa.chat.completions.create(
        model="gpt-4o", messages=[system, {"role": "user", "content": "one"}]
    )
    second = await oa.chat.completions.create(
        model="gpt-4o", messages=[system, {"role": "user", "content": "two"}]
    )
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= 1024 and cached % 128 == 0 and cached <= second.usage.prompt_tokens


async def test_reasoning_tokens(oa: openai.AsyncOpenAI) -> None:
    o3 = await oa.chat.completions.create(model="o3-mini", messages=USER)
    details = o3.usage.completion_tokens_details
    visible = len((o3.choices[0].message.content or "").split())
    assert details.reasoning_tokens > 0
    assert o3.usage.completion_tokens == visible + details.reasoning_tokens
    plain = await oa.chat.completions.create(model="gpt-4o", messages=USER)
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0
    effort = await oa.chat.completions.create(
        model="gpt-5", messages=USER, reasoning_effort="low"
    )
    assert effort.usage.completion_tokens_details.reasoning_tokens > 0


async def test_limits_stops_and_images(oa: openai.AsyncOpenAI) -> None:
    cut = await oa.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "echo: a b c d e"}],
        max_completion_tokens=2,
    )
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("a b", "length")
    stopped = await oa.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "echo: a b ### c"}], stop=["###"]
    )
    assert stopped.choices[0].message.content == "a b "
    assert stopped.choices[0].finish_reason == "stop"
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with_image = await oa.chat.completions.create(
        model="m", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}],
    )
    text_only = await oa.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert with_image.usage.prompt_tokens - text_only.usage.prompt_tokens == 85


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [("429", openai.RateLimitError, 429), ("500", openai.InternalServerError, 500),
     ("503", openai.InternalServerError, 503), ("529", openai.InternalServerError, 503)],
)
async def test_status_faults_raise_the_sdk_errors(
    oa: openai.AsyncOpenAI, kind: str, error: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as info:
        await oa.chat.completions.create(
            model="m", messages=USER, extra_headers={"x-fake-fault": kind}
        )
    assert info.value.status_code == status
    body = info.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    if kind == "429":
        assert info.value.response.headers["retry-after"] == "1"
        assert info.value.response.headers["x-ratelimit-remaining-requests"] == "0"
        assert body["code"] == "rate_limit_exceeded"


async def test_connection_faults(oa_fake: RunningFake, key: str) -> None:
    client = openai.AsyncOpenAI(base_url=oa_fake.base_url + "/v1", api_key=key,
                                max_retries=0, timeout=0.3)
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=USER,
                                             extra_headers={"x-fake-fault": "reset"})
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=USER,
                                             extra_headers={"x-fake-fault": "timeout"})
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=USER,
                                             extra_headers={"x-fake-fault": "cut"})
    with pytest.raises(json.JSONDecodeError):
        await client.chat.completions.create(model="m", messages=USER,
                                             extra_headers={"x-fake-fault": "malformed"})
    assert oa_fake.stats.served == []
    assert oa_fake.stats.outcomes == {"reset": 1, "timeout": 1, "cut": 1, "malformed": 1}


async def test_stream_faults(oa: openai.AsyncOpenAI) -> None:
    long_prompt = [{"role": "user", "content": "echo: " + "word " * 200}]
    stream = await oa.chat.completions.create(model="m", messages=long_prompt, stream=True,
                                              extra_headers={"x-fake-fault": "cut"})
    received: list[str] = []
    with pytest.raises((openai.APIConnectionError, httpx2.HTTPError)):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert 0 < len("".join(received).split()) < 200
    stream = await oa.chat.completions.create(model="m", messages=USER, stream=True,
                                              extra_headers={"x-fake-fault": "malformed"})
    with pytest.raises(json.JSONDecodeError):
        async for _ in stream:
            pass


async def test_wrong_key_and_validation(oa_fake: RunningFake, key: str) -> None:
    wrong = openai.AsyncOpenAI(base_url=oa_fake.base_url + "/v1", api_key="sk-wrong-key-999",
                               max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await wrong.chat.completions.create(model="m", messages=USER)
    assert info.value.code == "invalid_api_key"
    headers = {"authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as session:
        url = oa_fake.base_url + "/v1/chat/completions"
        async with session.post(url, json={"model": "m"}, headers=headers) as resp:
            body = await resp.json()
            assert resp.status == 400 and body["error"]["param"] == "messages"
        async with session.post(url, json={"messages": USER}, headers=headers) as resp:
            assert resp.status == 400 and "model" in (await resp.json())["error"]["message"]
        async with session.post(url, data=b"{nope", headers=headers) as resp:
            assert resp.status == 400
        async with session.post(url, json={"model": "m", "messages": USER}) as resp:
            assert resp.status == 401
    assert oa_fake.stats.outcomes == {"rejected": 5}


async def test_models_and_azure_paths(
    oa: openai.AsyncOpenAI, oa_fake: RunningFake, key: str
) -> None:
    ids = [m.id async for m in oa.models.list()]
    assert "gpt-4o-mini" in ids
    azure = openai.AsyncAzureOpenAI(azure_endpoint=oa_fake.base_url, api_key=key,
                                    api_version="2024-10-21", max_retries=0)
    r = await azure.chat.completions.create(
        model="prod-deployment", messages=[{"role": "user", "content": "echo: via azure"}]
    )
    assert (r.model, r.choices[0].message.content) == ("prod-deployment", "via azure")
    assert azure.api_key == key  # sent in the api-key header, which the fake checked
    root = openai.AsyncOpenAI(base_url=oa_fake.base_url, api_key=key, max_retries=0)
    plain = await root.chat.completions.create(model="m", messages=USER)
    assert plain.choices[0].message.content  # /chat/completions without the /v1 prefix
