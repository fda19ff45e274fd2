"""Fake LLM providers that speak the real OpenAI, Anthropic and Gemini wire formats over
HTTP on 127.0.0.1, deterministically (a seed), with realistic usage, prompt caching,
reasoning tokens, pacing and injectable faults. Shipped for the gateway's tests, ``thrifty
demo``, chaos tests and benchmarks; the official SDKs work against them unchanged.

    async with await start_fake("anthropic", seed=7, api_key="k") as fake:
        client = AsyncAnthropic(base_url=fake.base_url, api_key="k")

SDK base URLs: openai ``fake.base_url + "/v1"``; anthropic ``fake.base_url``; google-genai
``HttpOptions(base_url=fake.base_url)``. Force a fault with the ``x-fake-fault`` header.
"""

from thrifty.fake.faults import ALL_FAULTS, FAULT_HEADER, LATENCY_HEADER
from thrifty.fake.server import (
    WIRES,
    RunningFake,
    build_app,
    start_fake,
)
from thrifty.fake.stats import FakeStats, ServedUsage

__all__ = [
    "ALL_FAULTS",
    "FAULT_HEADER",
    "LATENCY_HEADER",
    "WIRES",
    "FakeStats",
    "RunningFake",
    "ServedUsage",
    "build_app",
    "start_fake",
]
