"""``thrifty.Gateway`` as a library, without the HTTP server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.conftest import Fakes, standard_config

import thrifty
from thrifty.config.load import parse_settings
from thrifty.config.resolve import resolve
from thrifty.engine.gateway import open_ledger
from thrifty.errors import InvalidRequest, ModelNotFound
from thrifty.wire.openai_chat import parse_chat_request


async def test_chat_and_chat_stream(fakes: Fakes, tmp_path: Path) -> None:
    runtime = resolve(parse_settings(standard_config(fakes, tmp_path / "l.db"), origin="t"))
    async with thrifty.Gateway(runtime, ledger=open_ledger(runtime)) as gw:
        reply = await gw.chat({"model": "an-haiku",
                               "messages": [{"role": "user", "content": "echo: library"}]})
        assert reply["choices"][0]["message"]["content"] == "library"
        assert float(reply["thrifty"]["cost_usd"]) > 0
        chunks = [c async for c in gw.chat_stream(
            {"model": "ge-flash", "messages": [{"role": "user", "content": "echo: streamed"}]})]
        text = "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in chunks if c["choices"])
        assert text == "streamed"
        assert chunks[-1]["usage"]["completion_tokens"] > 0 and "thrifty" in chunks[-1]
        with pytest.raises(ModelNotFound):
            await gw.chat({"model": "nope", "messages": [{"role": "user", "content": "x"}]})
        with pytest.raises(InvalidRequest):
            await gw.chat({"model": "an-haiku", "messages": "x"})
        assert gw.ledger is not None
        await gw.ledger.flush()
        assert gw.ledger.store.count() == 4


async def test_account_later_records_on_the_next_loop_turn(fakes: Fakes, tmp_path: Path) -> None:
    """The HTTP server's mode: the reply is ready before its ledger row, budget settle and
    observers; one loop turn later all of them have it, exactly once."""
    runtime = resolve(parse_settings(standard_config(fakes, tmp_path / "l.db"), origin="t"))
    seen: list[str] = []

    class Watch:
        def request_done(self, outcome: object, entry: object) -> None:
            seen.append(getattr(entry, "request_id", ""))

    async with thrifty.Gateway(runtime, ledger=open_ledger(runtime)) as gw:
        gw.observers.append(Watch())
        body = b'{"model": "an-haiku", "messages": [{"role": "user", "content": "echo: x"}]}'
        now = await gw.complete(parse_chat_request(body, "thr-now"))
        assert seen == ["thr-now"]  # the library's default: accounted before returning
        later = await gw.complete(parse_chat_request(body, "thr-later"), account_later=True)
        assert later.cost_usd == now.cost_usd and seen == ["thr-now"]
        await asyncio.sleep(0)
        assert seen == ["thr-now", "thr-later"]
        assert gw.ledger is not None
        await gw.ledger.flush()
        row = gw.ledger.store.get("thr-later")
        assert row is not None and row.trace is not None
        assert '"plan":{"policy"' in row.trace  # the plan's JSON, made at accounting time
