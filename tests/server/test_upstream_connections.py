"""Upstream connections are kept alive across requests, streams included: a stream whose
last event is in gives its connection back even when the body's framing ends a moment
later, and a client that leaves mid-stream closes the upstream connection (the provider
stops generating)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import (
    FAKE_KEYS,
    Fakes,
    GatewayFactory,
    RunningGateway,
    openai_client,
    standard_config,
)

from thrifty.fake import RunningFake, start_fake


@pytest.mark.parametrize("model", ["oa-mini", "an-haiku", "ge-flash"])
async def test_sequential_requests_and_streams_share_one_connection(
        gw: RunningGateway, model: str) -> None:
    client = openai_client(gw)
    messages = [{"role": "user", "content": "Say something short."}]
    for _ in range(3):
        reply = await client.chat.completions.create(model=model, messages=messages)
        assert reply.choices[0].message.content
        stream = await client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True})
        text = [c.choices[0].delta.content async for c in stream
                if c.choices and c.choices[0].delta.content]
        assert text
    assert gw.gateway.transport.connections_opened == 1


async def test_a_client_leaving_mid_stream_closes_the_upstream_connection(
        gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    async with await start_fake("openai", api_key=FAKE_KEYS["openai"],
                                tokens_per_s=100) as slow:  # a stream lasts ~0.5 s
        config = standard_config(fakes_like(slow), tmp_path / "l.db")
        gw = await gateway_factory(config)
        client = openai_client(gw)
        first = await client.chat.completions.create(
            model="oa-mini", messages=[{"role": "user", "content": "hello"}])
        assert first.choices[0].message.content
        assert gw.gateway.transport.connections_opened == 1
        stream = await client.chat.completions.create(
            model="oa-mini", stream=True, messages=[{"role": "user", "content": "hello"}])
        async for _ in stream:
            break  # one chunk, then the client goes away
        await stream.close()
        rows = await gw.ledger_rows_soon(2)
        assert [r["status"] for r in rows] == [200, 499]
        after = await client.chat.completions.create(
            model="oa-mini", messages=[{"role": "user", "content": "hello again"}])
        assert after.choices[0].message.content
        # the cut stream's connection was dropped, not pooled: the next call opened one
        assert gw.gateway.transport.connections_opened == 2


def fakes_like(openai: RunningFake) -> Fakes:
    """Only the OpenAI fake is called here; the config still names all three wires."""
    return Fakes(openai, openai, openai)
