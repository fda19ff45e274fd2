"""No input, however malformed, yields a 5xx or a hang: property-based, over real HTTP.

Hypothesis drives a synchronous client (stdlib http.client) against a gateway and a fake
provider running on their own event loop in a background thread."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import FAKE_KEYS

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["model", "messages", "stream", "stream_options", "temperature", "top_p", "n",
          "max_tokens", "max_completion_tokens", "stop", "seed", "user", "tools",
          "tool_choice", "parallel_tool_calls", "response_format", "thrifty", "logprobs"]
VALID = {"model": "oa-mini", "messages": [{"role": "user", "content": "echo: hi"}]}


class ThreadedGateway:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        from aiohttp import web

        from thrifty.config.load import parse_settings
        from thrifty.config.resolve import resolve
        from thrifty.engine.gateway import Gateway
        from thrifty.fake import start_fake
        from thrifty.ledger.sqlite import SQLiteLedger
        from thrifty.ledger.writer import LedgerWriter
        from thrifty.server.app import build_app

        self.fake = await start_fake("openai", api_key=FAKE_KEYS["openai"])
        cfg = {"providers": {"openai": {"base_url": f"{self.fake.base_url}/v1",
                                        "api_key": FAKE_KEYS["openai"]}},
               "models": {"oa-mini": {"provider": "openai", "model": "gpt-4o-mini",
                                      "price": {"input": "0.15", "output": "0.6"}}},
               "server": {"max_body_bytes": 65536}}
        gw = Gateway(resolve(parse_settings(cfg, origin="t")),
                     ledger=LedgerWriter(SQLiteLedger(str(self.tmp / "l.db"))))
        self.runner = web.AppRunner(build_app(gw))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.fake.close()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def post(self, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("POST", "/v1/chat/completions", body=body,
                         headers={"content-type": content_type})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        ctype = resp.getheader("content-type", "")
        if ctype.startswith("text/event-stream"):
            return resp.status, data
        return resp.status, json.loads(data)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedGateway]:
    gw = ThreadedGateway(tmp_path_factory.mktemp("malformed"))
    gw.thread.start()
    assert gw.ready.wait(20)
    yield gw
    gw.stop()


def check(status: int, body: Any) -> None:
    assert status < 500, body
    if status >= 400:
        err = body["error"]
        assert isinstance(err["message"], str) and err["message"]
        assert err["type"] in {"invalid_request_error", "authentication_error",
                               "permission_error", "rate_limit_error"}


_settings = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes(server: ThreadedGateway, raw: bytes) -> None:
    check(*server.post(raw))


@_settings
@given(value=json_values)
def test_arbitrary_json(server: ThreadedGateway, value: Any) -> None:
    check(*server.post(json.dumps(value).encode()))


@_settings
@given(field=st.sampled_from(FIELDS), value=json_values)
def test_valid_body_with_one_field_replaced(server: ThreadedGateway, field: str,
                                            value: Any) -> None:
    check(*server.post(json.dumps({**VALID, field: value}).encode()))


@_settings
@given(value=json_values, index=st.integers(0, 3))
def test_messages_with_arbitrary_entries(server: ThreadedGateway, value: Any,
                                         index: int) -> None:
    msgs: list[Any] = [{"role": "user", "content": "echo: hi"}] * 3
    msgs.insert(index, value)
    check(*server.post(json.dumps({**VALID, "messages": msgs}).encode()))


def test_oversized_body_is_413(server: ThreadedGateway) -> None:
    status, body = server.post(orjson.dumps({**VALID, "pad": "x" * 70000}))
    assert status == 413
    assert body["error"]["code"] == "request_too_large"


def test_valid_body_succeeds(server: ThreadedGateway) -> None:
    status, body = server.post(orjson.dumps(VALID))
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "hi"
