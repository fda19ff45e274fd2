"""A client whose connection resets while its stream is being written is accounted once,
as a 499 with the usage it was sent, never a second time as the gateway's own 500."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from tests.conftest import Fakes, GatewayFactory, standard_config

from thrifty.engine.account import Outcome
from thrifty.ledger.entry import LedgerEntry


class Seen:
    def __init__(self) -> None:
        self.statuses: list[int] = []

    def request_done(self, outcome: Outcome, entry: LedgerEntry) -> None:
        self.statuses.append(outcome.status)


async def test_reset_while_streaming_is_one_499_and_no_error_log(
    fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    # aiohttp's front (the fast path's own reset is in test_fastpath.py)
    gw = await gateway_factory({**standard_config(fakes, tmp_path / "l.db"),
                                "server": {"fast_path": False}})
    seen = Seen()
    gw.gateway.observers.append(seen)

    prepare = web.StreamResponse.prepare

    async def reset(self: web.StreamResponse, request: Any) -> Any:
        if "x-thrifty-request-id" in self.headers:  # the gateway's answer, not the fake's
            raise ConnectionResetError("Cannot write to closing transport")
        return await prepare(self, request)

    monkeypatch.setattr(web.StreamResponse, "prepare", reset)
    body = {"model": "oa-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with caplog.at_level(logging.ERROR, logger="thrifty.server"):
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.ClientError):
                async with s.post(f"{gw.v1}/chat/completions", data=orjson.dumps(body)) as r:
                    await r.read()

    assert seen.statuses == [499]
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
    rows = await gw.ledger_rows()
    assert [(r["status"], r["error_type"]) for r in rows] == [(499, "client_closed")]
