"""Shifting a fake provider's behaviour mid-run: ``shape`` is pure, and the fake applies a
new behaviour from the next request on, in-process or through ``POST /_fake/behaviour``."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from thrifty.fake import RunningFake, start_fake
from thrifty.fake.behaviour import REFUSAL, Behaviour, shape
from thrifty.fake.brain import Prompt, ToolSpec, think


def prompt(text: str = "Tell me about caching.", **kw: object) -> Prompt:
    return Prompt("m", (("user", text),), **kw)  # type: ignore[arg-type]


def test_shape_changes_only_what_the_behaviour_says() -> None:
    p = prompt()
    reply = think(p, 1)
    rng = random.Random(0)
    assert shape(reply, p, Behaviour(), rng) is reply
    short = shape(reply, p, Behaviour(output_words=3), rng)
    assert len(short.text.split()) == 3 and short.content_tokens == 3
    assert shape(reply, p, Behaviour(refuse_rate=1.0), rng).text == REFUSAL
    echo = prompt("echo: keep me")
    assert shape(think(echo, 1), echo, Behaviour(output_words=1), rng).text == "keep me"
    tools = prompt(tools=(ToolSpec("f", {"type": "object"}),), tool_choice="required")
    called = think(tools, 1)
    assert shape(called, tools, Behaviour(refuse_rate=1.0), rng) is called
    js = prompt(output="json_object")
    fenced = shape(think(js, 1), js, Behaviour(bad_json_rate=1.0), rng)
    assert fenced.text.startswith("```json") and fenced.content_tokens > 3


def test_behaviour_is_strict() -> None:
    with pytest.raises(ValueError):
        Behaviour(refuse_rate=2)
    with pytest.raises(ValueError):
        Behaviour.model_validate({"latency": 5})


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with await start_fake("openai", seed=3, faults=("500", "503")) as f:
        yield f


async def post(url: str, body: object) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as s, s.post(url, data=orjson.dumps(body)) as r:
        return r.status, await r.json()


async def ask(fake: RunningFake, n: int) -> tuple[int, str]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q {n}"}]}
    async with aiohttp.ClientSession() as s, s.post(
            f"{fake.base_url}/v1/chat/completions", data=orjson.dumps(body)) as r:
        data = await r.json()
        text = data["choices"][0]["message"]["content"] if r.status == 200 else ""
        return r.status, text


async def test_the_fake_shifts_over_http_and_restores(fake: RunningFake) -> None:
    url = f"{fake.base_url}/_fake/behaviour"
    assert (await ask(fake, 1))[0] == 200
    status, got = await post(url, {"refuse_rate": 1.0, "output_words": 2})
    assert status == 200 and got["refuse_rate"] == 1.0
    assert await ask(fake, 2) == (200, REFUSAL)
    status, got = await post(url, {"error_rate": 1.0})
    assert status == 200
    assert (await ask(fake, 3))[0] in (500, 503)
    status, _ = await post(url, {})
    assert status == 200
    code, text = await ask(fake, 4)
    assert code == 200 and text != REFUSAL and len(text.split()) > 2


async def test_bad_behaviour_is_refused(fake: RunningFake) -> None:
    status, body = await post(f"{fake.base_url}/_fake/behaviour", {"refuse_rate": "lots"})
    assert status == 400 and "error" in body
    async with aiohttp.ClientSession() as s, s.get(f"{fake.base_url}/_fake/behaviour") as r:
        assert (await r.json())["refuse_rate"] == 0.0


async def test_in_process_error_rate_overrides_and_restores(fake: RunningFake) -> None:
    fake.set_behaviour(error_rate=1.0)
    assert {(await ask(fake, i))[0] for i in range(3)} <= {500, 503}
    fake.set_behaviour()
    assert (await ask(fake, 9))[0] == 200
