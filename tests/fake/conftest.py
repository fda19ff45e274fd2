"""Fixtures for the fake providers' own tests: one running fake per wire (with a key), and
the official SDK clients pointed at it with retries off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from thrifty.fake import RunningFake, start_fake

KEY = "sk-fake-test-0123456789"


@pytest.fixture
async def oa_fake() -> AsyncIterator[RunningFake]:
    async with await start_fake("openai", api_key=KEY, seed=1, timeout_hang_s=5) as fake:
        yield fake


@pytest.fixture
async def an_fake() -> AsyncIterator[RunningFake]:
    async with await start_fake("anthropic", api_key=KEY, seed=1, timeout_hang_s=5) as fake:
        yield fake


@pytest.fixture
async def ge_fake() -> AsyncIterator[RunningFake]:
    async with await start_fake("gemini", api_key=KEY, seed=1, timeout_hang_s=5) as fake:
        yield fake


@pytest.fixture
async def oa(oa_fake: RunningFake) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=oa_fake.base_url + "/v1", api_key=KEY, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def an(an_fake: RunningFake) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=an_fake.base_url, api_key=KEY, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
def key() -> str:
    return KEY


def gemini_client(base_url: str, key: str = KEY, timeout_ms: int | None = None) -> genai.Client:
    # One attempt: the SDK otherwise retries 429/5xx and sleeps on dropped connections.
    options = types.HttpOptions(
        base_url=base_url, timeout=timeout_ms, retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture
def make_gemini() -> Callable[..., genai.Client]:
    """``make_gemini(base_url, key=..., timeout_ms=...)``: a google-genai client, one attempt."""
    return gemini_client


@pytest.fixture
async def ge(ge_fake: RunningFake) -> AsyncIterator[genai.Client]:
    client = gemini_client(ge_fake.base_url)
    yield client
    await client.aio.aclose()
