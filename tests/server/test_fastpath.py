"""The fast path: the API routes answered on the llhttp front, every other request handed,
from its first byte, to aiohttp on the same connection; keep-alive, pipelining, body limits,
100-continue, clients leaving, idle timeouts and graceful shutdown. Raw sockets, so the
bytes on the wire are what is checked."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from pathlib import Path
from typing import Any

import httptools
import orjson
import pytest
from tests.conftest import (
    FAKE_KEYS,
    Fakes,
    GatewayFactory,
    RunningGateway,
    openai_client,
    serve_gateway,
    standard_config,
)
from tests.server.test_upstream_connections import fakes_like

from thrifty.fake import start_fake
from thrifty.server.fastpath import Connection, FastPath

CHAT = orjson.dumps({"model": "oa-mini", "messages": [{"role": "user", "content": "hi"}]})


def post(body: bytes = CHAT, path: str = "/v1/chat/completions", extra: str = "",
         version: str = "1.1") -> bytes:
    return (f"POST {path} HTTP/{version}\r\nHost: gw\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: gw\r\n{extra}\r\n".encode()


class Wire:
    """One client connection: raw bytes out, parsed responses in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.done: list[tuple[int, dict[str, str], bytes]] = []
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self.parser = httptools.HttpResponseParser(self)

    @classmethod
    async def open(cls, gw: RunningGateway) -> Wire:
        host, port = gw.base_url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    def on_message_begin(self) -> None:
        self._headers, self._body = {}, bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self._headers, bytes(self._body)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def responses(self, n: int) -> list[tuple[int, dict[str, str], bytes]]:
        while len(self.done) < n:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                break
            self.parser.feed_data(data)
        out, self.done = self.done[:n], self.done[n:]
        assert len(out) == n, f"the connection closed after {len(out)} of {n} responses"
        return out

    async def closed(self, within_s: float = 5.0) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(65536), within_s) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.writer.close()


def fast(gw: RunningGateway) -> FastPath:
    assert gw.runner is not None
    return gw.runner.fast_paths[0]


def completion(resp: tuple[int, dict[str, str], bytes]) -> dict[str, Any]:
    status, headers, body = resp
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    assert headers["x-thrifty-request-id"].startswith("thr-")
    out: dict[str, Any] = orjson.loads(body)
    assert out["object"] == "chat.completion" and out["choices"][0]["message"]["content"]
    return out


async def test_sdk_traffic_stays_on_the_fast_path(gw: RunningGateway) -> None:
    client = openai_client(gw)
    models = await client.models.list()
    assert "oa-mini" in [m.id for m in models.data]
    for model in ("oa-mini", "an-haiku", "ge-flash"):
        reply = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say hi."}])
        assert reply.choices[0].message.content
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say hi."}], stream=True,
            stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert fast(gw).handed_over == 0
    rows = await gw.ledger_rows()
    assert [r["status"] for r in rows] == [200] * 6


async def test_keep_alive_then_a_hand_over_mid_connection(gw: RunningGateway) -> None:
    w = await Wire.open(gw)
    await w.send(post())
    completion((await w.responses(1))[0])
    assert fast(gw).handed_over == 0
    await w.send(get("/healthz"))  # not an API route: aiohttp's from here on
    status, _, body = (await w.responses(1))[0]
    assert (status, orjson.loads(body)) == (200, {"status": "ok"})
    assert fast(gw).handed_over == 1
    await w.send(post())  # aiohttp serves the API routes too
    completion((await w.responses(1))[0])
    w.close()
    assert len(await gw.ledger_rows()) == 2


async def test_pipelined_requests_are_answered_in_order(gw: RunningGateway) -> None:
    w = await Wire.open(gw)
    second = orjson.dumps({"model": "an-haiku", "messages": [{"role": "user", "content": "x"}]})
    await w.send(post() + post(second) + get("/v1/models") + get("/readyz"))
    a, b, models, ready = await w.responses(4)
    assert completion(a)["model"] == "gpt-4o-mini"
    assert completion(b)["model"] == "claude-haiku-4-5"
    assert orjson.loads(models[2])["object"] == "list"
    assert ready[0] == 200 and orjson.loads(ready[2])["status"] == "ready"
    assert fast(gw).handed_over == 1  # at /readyz, after three answered here
    w.close()


CHUNKED = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n" + b"%x\r\n%b\r\n0\r\n\r\n" % (len(CHAT), CHAT))
MIX = {"chat": (post(), 200), "models": (get("/v1/models"), 200),
       "healthz": (get("/healthz"), 200), "chunked": (CHUNKED, 200),
       "nowhere": (get("/v1/nowhere"), 404), "bad": (post(b"{not json"), 400)}


@pytest.mark.parametrize("seed", range(12))
async def test_any_mix_in_any_packets_is_answered_in_order(
        gw: RunningGateway, seed: int) -> None:
    """Pipelined requests of every kind (the fast path's, aiohttp's, errors), cut into
    packets at random places: every answer arrives, in order, with its status."""
    import random

    rng = random.Random(seed)
    names = [rng.choice(list(MIX)) for _ in range(rng.randint(2, 7))]
    raw = b"".join(MIX[n][0] for n in names)
    cuts = sorted(rng.sample(range(1, len(raw)), rng.randint(0, min(12, len(raw) - 1))))
    w = await Wire.open(gw)
    for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        await w.send(raw[a:b])
        await asyncio.sleep(rng.choice([0, 0, 0.002]))
    got = await w.responses(len(names))
    assert [s for s, _, _ in got] == [MIX[n][1] for n in names], names
    for n, (_, headers, body) in zip(names, got, strict=True):
        if n in ("chat", "chunked"):
            assert orjson.loads(body)["object"] == "chat.completion"
        if n == "bad":
            assert orjson.loads(body)["error"]["type"] == "invalid_request_error"
            assert headers["x-thrifty-request-id"].startswith("thr-")
    w.close()


async def test_a_request_split_across_packets_is_reassembled(gw: RunningGateway) -> None:
    w = await Wire.open(gw)
    raw = post()
    for i in range(0, len(raw), 7):
        await w.send(raw[i:i + 7])
        await asyncio.sleep(0)
    completion((await w.responses(1))[0])
    assert fast(gw).handed_over == 0
    w.close()


@pytest.mark.parametrize("raw", [
    # chunked body
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"%x\r\n%b\r\n0\r\n\r\n" % (len(CHAT), CHAT),
    post(version="1.0"),  # HTTP/1.0
    post(path="/v1/chat/completions?api-version=1", extra="X-Extra: 1\r\n").replace(
        b"POST", b"POST", 1),
], ids=["chunked", "http10", "query"])
async def test_other_framings_are_answered_alike(gw: RunningGateway, raw: bytes) -> None:
    w = await Wire.open(gw)
    await w.send(raw)
    completion((await w.responses(1))[0])
    w.close()


async def test_a_body_over_the_limit_is_a_413_in_the_openai_shape(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory({**standard_config(fakes, tmp_path / "l.db"),
                                "server": {"max_body_bytes": 1024}})
    w = await Wire.open(gw)
    await w.send(post(b"{" + b" " * 2000 + b"}"))
    status, _, body = (await w.responses(1))[0]
    assert status == 413
    err = orjson.loads(body)["error"]
    assert err["type"] == "invalid_request_error" and "1024" in err["message"]
    assert fast(gw).handed_over == 1
    w.close()


async def test_malformed_heads_get_aiohttps_400_and_the_server_lives_on(
        gw: RunningGateway) -> None:
    w = await Wire.open(gw)
    await w.send(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: x1\r\n\r\n")
    status, _, _ = (await w.responses(1))[0]
    assert status == 400
    assert await w.closed()
    w2 = await Wire.open(gw)
    await w2.send(post())
    completion((await w2.responses(1))[0])
    w2.close()


async def test_connection_close_is_honoured(gw: RunningGateway) -> None:
    w = await Wire.open(gw)
    await w.send(post(extra="Connection: close\r\n"))
    resp = (await w.responses(1))[0]
    completion(resp)
    assert resp[1]["connection"] == "close"
    assert await w.closed()


async def test_expect_100_continue(gw: RunningGateway) -> None:
    w = await Wire.open(gw)
    head, _, body = post(extra="Expect: 100-continue\r\n").partition(b"\r\n\r\n")
    await w.send(head + b"\r\n\r\n")
    interim = await asyncio.wait_for(w.reader.readuntil(b"\r\n\r\n"), 5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    await w.send(body)
    completion((await w.responses(1))[0])
    w.close()


async def test_auth_errors_in_the_openai_shape(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = await gateway_factory({**standard_config(fakes, tmp_path / "l.db"),
                                "server": {"master_key": "sk-master-0123456789"}})
    w = await Wire.open(gw)
    await w.send(post() + get("/v1/models", "Authorization: Bearer wrong\r\n"))
    (s1, h1, b1), (s2, _, b2) = await w.responses(2)
    assert (s1, s2) == (401, 401)
    assert orjson.loads(b1)["error"]["code"] == "missing_api_key"
    assert "sk-master" not in (b1 + b2).decode()
    assert h1["x-thrifty-request-id"].startswith("thr-")
    await w.send(post(extra="Authorization: Bearer sk-master-0123456789\r\n"))
    completion((await w.responses(1))[0])
    assert fast(gw).handed_over == 0
    w.close()


@pytest.mark.parametrize("fast_path", [True, False])
async def test_header_values_are_read_as_utf8_on_both_fronts(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path,
        fast_path: bool) -> None:
    gw = await gateway_factory({**standard_config(fakes, tmp_path / "l.db"),
                                "server": {"fast_path": fast_path}})
    w = await Wire.open(gw)
    await w.send(post(extra="X-Thrifty-Policy: modèle\r\n"))  # sent as UTF-8
    status, _, body = (await w.responses(1))[0]
    assert status == 400
    assert "modèle" in orjson.loads(body)["error"]["message"]
    w.close()


async def test_a_client_resetting_mid_stream_is_one_499(
        gateway_factory: GatewayFactory, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    async with await start_fake("openai", api_key=FAKE_KEYS["openai"],
                                tokens_per_s=100) as slow:  # a stream lasts ~0.5 s
        gw = await gateway_factory(standard_config(fakes_like(slow), tmp_path / "l.db"))
        with caplog.at_level(logging.ERROR, logger="thrifty"):
            await reset_mid_stream(gw)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_client_leaving_before_its_answer_is_one_499(
        gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    async with await start_fake("openai", api_key=FAKE_KEYS["openai"],
                                latency_ms=400) as slow:
        gw = await gateway_factory(standard_config(fakes_like(slow), tmp_path / "l.db"))
        w = await Wire.open(gw)
        await w.send(post())
        await asyncio.sleep(0.1)  # the gateway is waiting on the upstream
        w.close()
        rows = await gw.ledger_rows_soon()
        assert [(r["status"], r["error_type"]) for r in rows] == [(499, "client_closed")]
        assert rows[0]["latency_ms"] < 400  # cut when the client left, not when answered


async def reset_mid_stream(gw: RunningGateway) -> None:
    """The client resets (RST) after the first event of a ~0.5 s stream: one 499 row."""
    body = orjson.dumps({"model": "oa-mini", "stream": True,
                         "messages": [{"role": "user", "content": "hello"}]})
    w = await Wire.open(gw)
    await w.send(post(body))
    head = await asyncio.wait_for(w.reader.readuntil(b"\r\n\r\n"), 5)
    assert b"transfer-encoding: chunked" in head
    assert b"data: " in await asyncio.wait_for(w.reader.read(4096), 5)
    sock = w.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.close()  # an RST, not a FIN
    rows = await gw.ledger_rows_soon()
    assert [(r["status"], r["error_type"]) for r in rows] == [(499, "client_closed")]


async def test_a_slow_reader_gets_the_whole_stream(
        gw: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    paused: list[int] = []
    pause = Connection.pause_writing

    def counting(self: Connection) -> None:
        paused.append(1)
        pause(self)

    made = Connection.connection_made

    def small_buffers(self: Connection, transport: Any) -> None:
        # the kernel's send buffer would otherwise swallow the whole stream
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        made(self, transport)

    monkeypatch.setattr(Connection, "pause_writing", counting)
    monkeypatch.setattr(Connection, "connection_made", small_buffers)
    echo = "echo: " + "lorem " * 4000  # the fake says it back, a word per event
    body = orjson.dumps({"model": "oa-mini", "stream": True,
                         "messages": [{"role": "user", "content": echo}]})
    host, port = gw.base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    w = Wire(*await asyncio.open_connection(sock=sock))
    await w.send(post(body))
    await asyncio.sleep(0.5)  # read nothing while the gateway writes
    status, _, events = (await w.responses(1))[0]
    assert status == 200
    assert events.rstrip().endswith(b"data: [DONE]")
    assert len(events) > 200_000
    assert paused, "the stream never filled the socket: the test did not test back-pressure"
    w.close()


async def test_idle_and_stalled_connections_are_closed(gw: RunningGateway) -> None:
    fast(gw).keepalive_s = 0.2
    idle = await Wire.open(gw)
    stalled = await Wire.open(gw)
    await stalled.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: g")
    used = await Wire.open(gw)
    await used.send(post())
    completion((await used.responses(1))[0])
    assert await idle.closed(within_s=3)
    assert await stalled.closed(within_s=3)
    assert await used.closed(within_s=3)


async def test_shutdown_waits_for_the_request_in_flight(tmp_path: Path) -> None:
    async with await start_fake("openai", api_key=FAKE_KEYS["openai"],
                                latency_ms=300) as slow:
        gw = await serve_gateway(standard_config(fakes_like(slow), tmp_path / "l.db"),
                           tmp_path / "l.db")
        assert gw.runner is not None
        busy, idle = await Wire.open(gw), await Wire.open(gw)
        await busy.send(post())
        await asyncio.sleep(0.1)  # the request is waiting on the upstream
        stopping = asyncio.create_task(gw.runner.cleanup())
        assert await idle.closed(within_s=2)
        status, headers, _ = (await busy.responses(1))[0]
        assert status == 200 and headers["connection"] == "close"
        await stopping
        import sqlite3

        con = sqlite3.connect(tmp_path / "l.db")
        assert [r[0] for r in con.execute("SELECT status FROM requests")] == [200]
        con.close()


def test_the_same_on_uvloop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`thrifty serve` runs on uvloop when it is installed (the speed extra), and its
    transports are not asyncio's: the wire-level tests above again, on a uvloop loop."""
    uvloop = pytest.importorskip("uvloop", reason="the speed extra is not installed")
    cases = [test_keep_alive_then_a_hand_over_mid_connection,
             test_pipelined_requests_are_answered_in_order,
             test_a_request_split_across_packets_is_reassembled,
             test_connection_close_is_honoured, test_expect_100_continue,
             test_malformed_heads_get_aiohttps_400_and_the_server_lives_on]

    async def scenario() -> None:
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        oa = await start_fake("openai", api_key=FAKE_KEYS["openai"])
        an = await start_fake("anthropic", api_key=FAKE_KEYS["anthropic"])
        try:
            for i, case in enumerate(cases):
                db = tmp_path / f"{i}.db"
                gw = await serve_gateway(standard_config(Fakes(oa, an, oa), db), db)
                assert gw.runner is not None
                try:
                    await case(gw)
                finally:
                    await gw.runner.cleanup()
            db = tmp_path / "slow.db"
            gw = await serve_gateway(standard_config(Fakes(oa, an, oa), db), db)
            assert gw.runner is not None
            try:
                await test_a_slow_reader_gets_the_whole_stream(gw, monkeypatch)
            finally:
                await gw.runner.cleanup()
        finally:
            await oa.close()
            await an.close()
        async with await start_fake("openai", api_key=FAKE_KEYS["openai"],
                                    tokens_per_s=100) as slow:
            db = tmp_path / "reset.db"
            gw = await serve_gateway(standard_config(fakes_like(slow), db), db)
            assert gw.runner is not None
            try:
                await reset_mid_stream(gw)
            finally:
                await gw.runner.cleanup()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def test_header_values_never_break_the_head() -> None:
    front = FastPath(None, 1024, lambda: asyncio.Protocol())  # type: ignore[arg-type]
    head = Connection(front)._head(200, {"x-thrifty-model": "a\r\nSet-Cookie: x=1"}, True, "")
    assert head.count(b"\r\n") == 4  # status, date, the one header, the blank line
    assert b"x-thrifty-model: a  Set-Cookie: x=1\r\n" in head
