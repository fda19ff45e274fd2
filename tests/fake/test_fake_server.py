"""The fake server's own machinery: stats, pacing, latency, random faults, shutdown."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from thrifty.fake import RunningFake, build_app, start_fake

BODY = {"model": "m", "messages": [{"role": "user", "content": "echo: " + "w " * 40}]}


async def post(session: aiohttp.ClientSession, fake: RunningFake, *, headers: dict[str, str]
               | None = None, body: dict[str, object] | None = None) -> int:
    async with session.post(fake.base_url + "/v1/chat/completions", json=body or BODY,
                            headers=headers or {}) as resp:
        await resp.read()
        return resp.status


async def test_stats_endpoint_and_reset() -> None:
    async with await start_fake("openai") as fake, aiohttp.ClientSession() as session:
        assert await post(session, fake) == 200
        assert await post(session, fake, headers={"x-fake-fault": "500"}) == 500
        assert await post(session, fake, headers={"x-fake-fault": "bogus"}) == 400
        async with session.get(fake.base_url + "/_fake/stats") as resp:
            stats = await resp.json()
        assert stats["requests"] == 3
        assert stats["outcomes"] == {"ok": 1, "500": 1, "rejected": 1}
        [served] = stats["served"]
        assert served["model"] == "m" and served["usage"]["output_tokens"] == 40
        assert served["reported"]["completion_tokens"] == 40
        async with session.post(fake.base_url + "/_fake/reset") as resp:
            assert resp.status == 200
        assert fake.stats.requests == 0 and fake.stats.served == []
        fake.stats.outcomes["x"] += 1
        fake.stats.reset()
        assert not fake.stats.outcomes


async def test_latency_and_pacing() -> None:
    async with await start_fake("openai", latency_ms=60, tokens_per_s=800) as fake, \
            aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        stream = {**BODY, "stream": True}
        async with session.post(fake.base_url + "/v1/chat/completions", json=stream) as resp:
            first = await resp.content.readany()
            t_first = time.perf_counter() - t0
            await resp.read()
        t_all = time.perf_counter() - t0
        assert first.startswith(b"data: ")
        assert t_first >= 0.06  # latency before the first byte
        assert t_all >= 0.06 + 40 / 800  # 40 tokens paced at 800 tokens/s
        t0 = time.perf_counter()
        await post(session, fake, headers={"x-fake-latency-ms": "0"},
                   body={"model": "m", "messages": [{"role": "user", "content": "echo: x"}]})
        assert time.perf_counter() - t0 < 0.05  # the header overrides the configured latency


async def test_random_faults_follow_the_seed() -> None:
    async def outcomes(seed: int) -> list[int]:
        async with await start_fake("openai", error_rate=0.5, faults=["429", "503"],
                                    seed=seed) as fake, aiohttp.ClientSession() as session:
            return [await post(session, fake) for _ in range(16)]

    first = await outcomes(4)
    assert first == await outcomes(4)
    assert set(first) == {200, 429, 503}
    assert first != await outcomes(5)


async def test_aborted_stream_is_not_billed() -> None:
    async with await start_fake("anthropic", tokens_per_s=2000) as fake:
        body = {"model": "m", "max_tokens": 400, "stream": True,
                "messages": [{"role": "user", "content": "echo: " + "w " * 300}]}
        async with aiohttp.ClientSession() as session, session.post(
            fake.base_url + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
        ) as resp:
            await resp.content.readany()
            resp.close()  # hang up mid-stream
        for _ in range(100):
            if fake.stats.outcomes:
                break
            await asyncio.sleep(0.01)
        assert fake.stats.outcomes == {"aborted": 1}
        assert fake.stats.served == []


async def test_close_does_not_wait_for_a_hung_request() -> None:
    fake = await start_fake("openai", timeout_hang_s=30)
    session = aiohttp.ClientSession()
    task = asyncio.create_task(post(session, fake, headers={"x-fake-fault": "timeout"}))
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    await fake.close()
    assert time.perf_counter() - t0 < 2
    with pytest.raises(aiohttp.ClientError):
        await task
    await session.close()


async def test_refuses_non_loopback_and_bad_settings() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await start_fake("openai", host="0.0.0.0")
    with pytest.raises(ValueError, match="unknown wire"):
        build_app("cohere")
    with pytest.raises(ValueError):
        build_app("openai", faults=["boom"])
    with pytest.raises(ValueError):
        build_app("openai", tokens_per_s=0)
    async with await start_fake("gemini") as fake:
        assert fake.base_url == f"http://127.0.0.1:{fake.port}" and fake.port > 0


ODD_BODIES = [
    ("openai", "/v1/chat/completions", {"model": "m", "stop": 5, "messages": [
        {"role": "user", "content": 7}], "stream_options": [1]}),
    ("openai", "/v1/chat/completions", {"model": "m", "messages": [{"role": "user"}], "tools": [
        {"type": "function", "function": {"name": "f", "parameters": {"required": [{}],
                                                                      "properties": []}}}]}),
    ("anthropic", "/v1/messages", {"model": "m", "max_tokens": 9, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "content": 7}]}]}),
    ("gemini", "/v1beta/models/g:generateContent", {
        "contents": [{"parts": [{"text": "hi"}]}], "systemInstruction": {"parts": 3},
        "tools": [{"functionDeclarations": 1}], "generationConfig": [2]}),
]


@pytest.mark.parametrize(("wire", "path", "body"), ODD_BODIES)
async def test_odd_bodies_get_answers_not_crashes(
    wire: str, path: str, body: dict[str, object]
) -> None:
    async with await start_fake(wire) as fake, aiohttp.ClientSession() as session:
        async with session.post(fake.base_url + path, json=body,
                                headers={"anthropic-version": "2023-06-01"}) as resp:
            assert resp.status in (200, 400)
        assert fake.stats.outcomes.keys() <= {"ok", "rejected"}
