"""The Anthropic fake, driven by the official ``anthropic`` SDK over real HTTP."""

from __future__ import annotations

import json

import aiohttp
import anthropic
import pytest

from thrifty.fake import RunningFake

USER = [{"role": "user", "content": "Tell me something about gateways."}]
LOOKUP = {"name": "lookup", "description": "search the docs", "input_schema": {
    "type": "object",
    "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "maximum": 5}},
    "required": ["query", "limit"]}}
CLOCK = {"name": "clock", "input_schema": {"type": "object", "properties": {}}}


async def test_message_text_usage_and_stats(
    an: anthropic.AsyncAnthropic, an_fake: RunningFake
) -> None:
    m = await an.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=USER)
    [block] = m.content
    assert block.type == "text" and 20 <= len(block.text.split()) <= 80
    assert (m.role, m.stop_reason, m.model) == ("assistant", "end_turn", "claude-haiku-4-5")
    assert m.id.startswith("msg_")
    assert m.usage.input_tokens == 3 + (len(USER[0]["content"]) + 3) // 4
    assert m.usage.output_tokens == len(block.text.split())
    assert (m.usage.cache_read_input_tokens, m.usage.cache_creation_input_tokens) == (0, 0)
    [served] = an_fake.stats.served
    assert served.reported == m.usage.model_dump(exclude_none=True)
    assert served.usage.input_tokens == m.usage.input_tokens


async def test_max_tokens_and_stop_sequences(an: anthropic.AsyncAnthropic) -> None:
    cut = await an.messages.create(model="m", max_tokens=3, messages=[
        {"role": "user", "content": "echo: one two three four"}])
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3
    stopped = await an.messages.create(model="m", max_tokens=50, stop_sequences=["|"], messages=[
        {"role": "user", "content": "echo: left | right"}])
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "|")
    assert stopped.content[0].text == "left "


async def test_stream_helper_accumulates_text(an: anthropic.AsyncAnthropic) -> None:
    whole = await an.messages.create(model="m", max_tokens=200, messages=USER)
    async with an.messages.stream(model="m", max_tokens=200, messages=USER) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == whole.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.stop_reason == "end_turn"


async def test_raw_event_order(an: anthropic.AsyncAnthropic) -> None:
    stream = await an.messages.create(model="m", max_tokens=200, messages=USER, stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start" and kinds[-3] == "content_block_stop"
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert kinds[-2:] == ["message_delta", "message_stop"]


async def test_tool_use_streamed_input_json(an: anthropic.AsyncAnthropic) -> None:
    async with an.messages.stream(
        model="m", max_tokens=200, messages=USER, tools=[LOOKUP, CLOCK],
    ) as stream:
        final = await stream.get_final_message()
    [use] = final.content
    assert use.type == "tool_use" and use.name == "lookup" and use.id.startswith("toolu_")
    assert isinstance(use.input["query"], str) and use.input["limit"] <= 5
    assert final.stop_reason == "tool_use"
    both = await an.messages.create(model="m", max_tokens=200, tools=[LOOKUP, CLOCK],
                                    messages=[{"role": "user", "content": "both in parallel"}])
    assert [b.name for b in both.content] == ["lookup", "clock"]
    single = await an.messages.create(
        model="m", max_tokens=200, tools=[LOOKUP, CLOCK],
        tool_choice={"type": "tool", "name": "clock", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "both in parallel"}],
    )
    assert [b.name for b in single.content] == ["clock"]


async def test_tool_result_is_mentioned(an: anthropic.AsyncAnthropic) -> None:
    messages = [
        *USER,
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"query": "x"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found 3 pages"}]},
    ]
    m = await an.messages.create(model="m", max_tokens=200, messages=messages,
                                 tools=[LOOKUP])
    assert m.stop_reason == "end_turn" and "found 3 pages" in m.content[0].text


async def test_cache_control_writes_then_reads(an: anthropic.AsyncAnthropic) -> None:
    system = [{"type": "text", "text": "Policy text. " * 400,
               "cache_control": {"type": "ephemeral"}}]
    first = await an.messages.create(model="m", max_tokens=20, system=system, messages=USER)
    second = await an.messages.create(model="m", max_tokens=20, system=system, messages=[
        {"role": "user", "content": "another question"}])
    written = first.usage.cache_creation_input_tokens
    assert written and written >= 1024 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == written
    assert second.usage.cache_creation_input_tokens == 0
    # input_tokens excludes the cached part, as the real API reports it
    assert second.usage.input_tokens == 3 + (len("another question") + 3) // 4


async def test_structured_outputs(an: anthropic.AsyncAnthropic) -> None:
    schema = {"type": "object", "properties": {"verdict": {"type": "string", "enum": ["y", "n"]}},
              "required": ["verdict"], "additionalProperties": False}
    m = await an.messages.create(model="m", max_tokens=100, messages=USER,
                                 output_config={"format": {"type": "json_schema",
                                                           "schema": schema}})
    assert json.loads(m.content[0].text)["verdict"] in ("y", "n")


async def test_extended_thinking(an: anthropic.AsyncAnthropic) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    m = await an.messages.create(model="claude-test", max_tokens=2048, thinking=thinking,
                                 messages=USER)
    think_block, text_block = m.content
    assert think_block.type == "thinking" and think_block.signature
    words = len(think_block.thinking.split()) + len(text_block.text.split())
    assert m.usage.output_tokens == words
    async with an.messages.stream(model="claude-test", max_tokens=2048,
                                  thinking=thinking, messages=USER) as stream:
        final = await stream.get_final_message()
    assert final.content[0].thinking == think_block.thinking
    assert final.content[0].signature == think_block.signature
    with pytest.raises(anthropic.BadRequestError):
        await an.messages.create(model="m", max_tokens=500, messages=USER,
                                 thinking={"type": "enabled", "budget_tokens": 1024})


async def test_images_count_a_fixed_amount(an: anthropic.AsyncAnthropic) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "AAAA"}}
    with_image = await an.messages.create(model="m", max_tokens=20, messages=[
        {"role": "user", "content": [{"type": "text", "text": "hi"}, image]}])
    text_only = await an.messages.create(model="m", max_tokens=20, messages=[
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    assert with_image.usage.input_tokens - text_only.usage.input_tokens == 85


@pytest.mark.parametrize(
    ("kind", "error", "etype"),
    [("429", anthropic.RateLimitError, "rate_limit_error"),
     ("500", anthropic.InternalServerError, "api_error"),
     ("503", anthropic.ServiceUnavailableError, "api_error"),
     ("529", anthropic.OverloadedError, "overloaded_error")],
)
async def test_status_faults(
    an: anthropic.AsyncAnthropic, kind: str, error: type[anthropic.APIStatusError], etype: str
) -> None:
    with pytest.raises(error) as info:
        await an.messages.create(model="m", max_tokens=20, messages=USER,
                                 extra_headers={"x-fake-fault": kind})
    assert info.value.status_code == int(kind) and info.value.type == etype
    assert info.value.body["type"] == "error"
    if kind == "429":
        headers = info.value.response.headers
        assert headers["retry-after"] == "1"
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"


async def test_connection_faults(an_fake: RunningFake, key: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=an_fake.base_url, api_key=key, max_retries=0,
                                      timeout=0.3)
    for kind, error in (("reset", anthropic.APIConnectionError),
                        ("timeout", anthropic.APITimeoutError)):
        with pytest.raises(error):
            await client.messages.create(model="m", max_tokens=20, messages=USER,
                                         extra_headers={"x-fake-fault": kind})
    with pytest.raises(ValueError):  # json.JSONDecodeError
        async with client.messages.stream(model="m", max_tokens=20, messages=USER,
                                          extra_headers={"x-fake-fault": "malformed"}) as s:
            await s.get_final_message()
    assert an_fake.stats.served == []


async def test_auth_and_validation(an_fake: RunningFake, key: str) -> None:
    wrong = anthropic.AsyncAnthropic(base_url=an_fake.base_url, api_key="bad", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        await wrong.messages.create(model="m", max_tokens=20, messages=USER)
    assert info.value.type == "authentication_error"
    url = an_fake.base_url + "/v1/messages"
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"model": "m", "messages": USER}, headers=headers) as r:
            body = await r.json()
            assert r.status == 400 and body["type"] == "error"
            assert body["error"] == {"type": "invalid_request_error",
                                     "message": "max_tokens: Field required"}
        async with session.post(url, json={"model": "m", "max_tokens": 5, "messages": USER},
                                headers={"x-api-key": key}) as r:
            assert r.status == 400  # anthropic-version is required
        async with session.get(an_fake.base_url + "/v1/models", headers=headers) as r:
            models = await r.json()
            assert r.status == 200 and models["data"][0]["type"] == "model"
