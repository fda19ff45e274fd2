"""The Gemini fake, driven by the official ``google-genai`` SDK over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import orjson
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from thrifty.fake import RunningFake

# google-genai subclasses aiohttp.ClientSession, which aiohttp warns about: not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)
MODEL = "gemini-2.0-flash"
ASK = "Tell me something about gateways."
WEATHER = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather",
    parameters=types.Schema(type=types.Type.OBJECT, properties={
        "city": types.Schema(type=types.Type.STRING),
        "unit": types.Schema(type=types.Type.STRING, enum=["C", "F"]),
    }, required=["city", "unit"]),
)])
NO_AUTO_CALL = types.AutomaticFunctionCallingConfig(disable=True)


def fault(kind: str) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(http_options=types.HttpOptions(
        headers={"x-fake-fault": kind}))


async def test_generate_text_usage_and_stats(ge: genai.Client, ge_fake: RunningFake) -> None:
    r = await ge.aio.models.generate_content(model=MODEL, contents=ASK)
    assert r.text and 20 <= len(r.text.split()) <= 80
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.STOP
    usage = r.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == 3 + (len(ASK) + 3) // 4
    assert usage.candidates_token_count == len(r.text.split())
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert usage.cached_content_token_count is None and usage.thoughts_token_count is None
    [served] = ge_fake.stats.served
    assert served.model == MODEL and served.usage.input_tokens == usage.prompt_token_count


async def test_stream_assembles_the_same_text(ge: genai.Client) -> None:
    whole = await ge.aio.models.generate_content(model=MODEL, contents=ASK)
    chunks = [c async for c in await ge.aio.models.generate_content_stream(
        model=MODEL, contents=ASK)]
    assert len(chunks) > 1
    assert "".join(c.text or "" for c in chunks) == whole.text
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata == whole.usage_metadata
    assert chunks[0].usage_metadata.candidates_token_count is None


async def test_stream_without_sse_is_one_json_array(ge_fake: RunningFake, key: str) -> None:
    url = f"{ge_fake.base_url}/v1beta/models/{MODEL}:streamGenerateContent?key={key}"
    body = {"contents": [{"role": "user", "parts": [{"text": "echo: " + "w " * 30}]}]}
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        items = orjson.loads(await resp.read())
    assert isinstance(items, list) and len(items) > 1
    text = "".join(p["text"] for i in items for p in i["candidates"][0]["content"]["parts"])
    assert text.split() == ["w"] * 30
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_function_calling_and_result(ge: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AUTO_CALL)
    r = await ge.aio.models.generate_content(model=MODEL, contents="weather?", config=config)
    [call] = r.function_calls or []
    assert call.name == "get_weather" and call.args and call.args["unit"] in ("C", "F")
    contents = [
        types.Content(role="user", parts=[types.Part(text="weather?")]),
        types.Content(role="model", parts=[types.Part(function_call=call)]),
        types.Content(role="user", parts=[types.Part.from_function_response(
            name="get_weather", response={"forecast": "snow tomorrow"})]),
    ]
    answer = await ge.aio.models.generate_content(model=MODEL, contents=contents, config=config)
    assert answer.function_calls is None and "snow tomorrow" in (answer.text or "")


class Recipe(BaseModel):
    name: str
    servings: int
    steps: list[str]


async def test_response_schema_parses(ge: genai.Client) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json",
                                         response_schema=Recipe)
    r = await ge.aio.models.generate_content(model=MODEL, contents="a recipe", config=config)
    assert isinstance(r.parsed, Recipe)


async def test_implicit_cache_counts_inside_prompt_tokens(ge: genai.Client) -> None:
    context = "A long shared context paragraph. " * 200
    first = await ge.aio.models.generate_content(model=MODEL, contents=[context, "one"])
    second = await ge.aio.models.generate_content(model=MODEL, contents=[context, "two"])
    assert first.usage_metadata.cached_content_token_count is None
    cached = second.usage_metadata.cached_content_token_count
    assert cached and cached >= 1024 and cached % 128 == 0
    assert second.usage_metadata.prompt_token_count == first.usage_metadata.prompt_token_count


async def test_thinking_tokens_sit_outside_candidates(ge: genai.Client) -> None:
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(
        thinking_budget=200, include_thoughts=True))
    r = await ge.aio.models.generate_content(model="gemini-2.5-flash", contents=ASK,
                                             config=config)
    usage = r.usage_metadata
    assert usage and usage.thoughts_token_count and 0 < usage.thoughts_token_count <= 200
    assert usage.candidates_token_count == len((r.text or "").split())
    assert usage.total_token_count == (usage.prompt_token_count or 0) + (
        usage.candidates_token_count or 0) + usage.thoughts_token_count
    parts = r.candidates[0].content.parts
    assert parts and parts[0].thought is True
    off = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0))
    plain = await ge.aio.models.generate_content(model=MODEL, contents=ASK, config=off)
    assert plain.usage_metadata.thoughts_token_count is None


async def test_max_output_tokens(ge: genai.Client) -> None:
    config = types.GenerateContentConfig(max_output_tokens=2)
    r = await ge.aio.models.generate_content(model=MODEL, contents="echo: a b c", config=config)
    assert r.text == "a b"
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


@pytest.mark.parametrize(
    ("kind", "error", "code"),
    [("429", errors.ClientError, 429), ("500", errors.ServerError, 500),
     ("503", errors.ServerError, 503)],
)
async def test_status_faults(
    ge: genai.Client, kind: str, error: type[errors.APIError], code: int
) -> None:
    with pytest.raises(error) as info:
        await ge.aio.models.generate_content(model=MODEL, contents=ASK, config=fault(kind))
    assert info.value.code == code
    if kind == "429":
        assert info.value.status == "RESOURCE_EXHAUSTED"


async def test_connection_faults(
    ge_fake: RunningFake, make_gemini: Callable[..., genai.Client]
) -> None:
    client = make_gemini(ge_fake.base_url, timeout_ms=300)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.aio.models.generate_content(model=MODEL, contents=ASK, config=fault("reset"))
    with pytest.raises(TimeoutError):
        await client.aio.models.generate_content(model=MODEL, contents=ASK,
                                                 config=fault("timeout"))
    with pytest.raises(errors.UnknownApiResponseError):
        async for _ in await client.aio.models.generate_content_stream(
            model=MODEL, contents=ASK, config=fault("malformed")
        ):
            pass
    await client.aio.aclose()
    assert ge_fake.stats.served == []


async def test_keys(ge_fake: RunningFake, make_gemini: Callable[..., genai.Client]) -> None:
    wrong = make_gemini(ge_fake.base_url, key="AIza-wrong")
    with pytest.raises(errors.ClientError) as info:
        await wrong.aio.models.generate_content(model=MODEL, contents=ASK)
    # The real API answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert info.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    await wrong.aio.aclose()
    async with aiohttp.ClientSession() as session:
        url = f"{ge_fake.base_url}/v1beta/models/{MODEL}:generateContent"
        async with session.post(url, json={"contents": []}) as resp:
            assert resp.status == 403  # no key at all
        async with session.get(f"{ge_fake.base_url}/v1beta/models") as resp:
            assert resp.status == 403
