"""The upstream HTTP/1.1 client against raw servers that write exact bytes: framing (length,
chunked, close-delimited), keep-alive reuse and expiry, deadlines, cancellation, gzip, the
request's bytes, back-pressure, TLS, and how the transport maps each failure."""

from __future__ import annotations

import asyncio
import gzip
import random
import ssl
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType

import pytest
import trustme
from tests.services import free_port

from thrifty.errors import UpstreamBadResponse, UpstreamTimeout, UpstreamUnavailable
from thrifty.providers.base import UpstreamRequest
from thrifty.providers.http1 import ConnectFailed, ConnectionPool, ProtocolFailed, Response
from thrifty.providers.transport import Deadlines, Transport

Handler = Callable[["Peer"], Awaitable[None]]

OK_HELLO = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


class Peer:
    """One accepted connection, seen from the server."""

    def __init__(self, server: RawServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer

    async def request(self) -> bytes | None:
        """One request, head and content-length body; None if the client closed first."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        raw = head + await self.reader.readexactly(length)
        self.server.requests.append(raw)
        return raw

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_closed(self) -> None:
        """Until the client closes (EOF or reset): the test then sees ``client_closed``."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.server.client_closed.set()


class RawServer:
    """A 127.0.0.1 server on an ephemeral port whose every connection runs ``handler``.
    Counts accepted connections and keeps the requests received."""

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self.accepted = 0
        self.requests: list[bytes] = []
        self.client_closed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors: list[BaseException] = []
        self.port = 0

    def url(self, path: str = "/", *, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        if self._errors and exc_type is None:  # a failed assertion inside a handler
            raise self._errors[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(Peer(self, reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away, as several tests make it
        except asyncio.CancelledError:
            pass  # teardown; ending normally keeps 3.11's stream callback from logging it
        except Exception as exc:
            self._errors.append(exc)
        finally:
            writer.close()


def answer(raw: bytes) -> Handler:
    """Answer every request on the connection with ``raw``, until the client closes."""

    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(raw)
        peer.server.client_closed.set()

    return handler


def answer_then_close(raw: bytes) -> Handler:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(raw)

    return handler


async def post(pool: ConnectionPool, url: str, *, headers: Mapping[str, str] | None = None,
               body: bytes = b"", connect_s: float = 2.0, first_byte_s: float = 2.0,
               total_s: float = 4.0) -> Response:
    return await pool.request("POST", url, headers or {}, body, connect_s=connect_s,
                              first_byte_s=first_byte_s, total_s=total_s)


async def get_body(pool: ConnectionPool, url: str) -> bytes:
    return await (await post(pool, url)).read()


async def closed_by_client(srv: RawServer) -> bool:
    try:
        await asyncio.wait_for(srv.client_closed.wait(), 2)
    except TimeoutError:
        return False
    return True


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def up(url: str) -> UpstreamRequest:
    return UpstreamRequest(url, {"content-type": "application/json"}, b"{}")


FAST = Deadlines(connect_s=2.0, first_byte_s=0.2, total_s=4.0)


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    p = ConnectionPool()
    yield p
    await p.close()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.close()


# -- framing and keep-alive ------------------------------------------------------------------


async def test_content_length_response_reuses_one_connection(pool: ConnectionPool) -> None:
    raw = (b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Dup: a\r\nX-Dup: b\r\n"
           b"Content-Length: 5\r\n\r\nhello")
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        for _ in range(2):
            resp = await post(pool, srv.url())
            assert resp.status == 201
            assert resp.headers == {"content-type": "text/plain", "x-dup": "a, b",
                                    "content-length": "5"}
            assert await resp.read() == b"hello"
        assert srv.accepted == 1
        assert len(srv.requests) == 2
        assert pool.idle_count() == 1


async def test_chunked_response_read_whole(pool: ConnectionPool) -> None:
    raw = CHUNKED_HEAD + chunked(b"hello", b" ", b"world" * 100)
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        assert await get_body(pool, srv.url()) == b"hello " + b"world" * 100
        assert await get_body(pool, srv.url()) == b"hello " + b"world" * 100
        assert srv.accepted == 1
        assert pool.idle_count() == 1


async def test_chunked_response_streams_each_chunk_as_it_comes(pool: ConnectionPool) -> None:
    go = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + b"5\r\nfirst\r\n")
        await go.wait()  # the second chunk only once the client has the first
        await peer.send(b"6\r\nsecond\r\n0\r\n\r\n")
        await peer.wait_closed()

    async with asyncio.timeout(5), RawServer(handler) as srv:
        resp = await post(pool, srv.url())
        stream = resp.chunks()
        assert await asyncio.wait_for(anext(stream), 1) == b"first"
        go.set()
        assert [chunk async for chunk in stream] == [b"second"]
        assert pool.idle_count() == 1


async def test_connection_close_is_not_reused(pool: ConnectionPool) -> None:
    # the server would answer a second request on the same connection: the client must not try
    raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 5\r\n\r\nhello"
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        assert await get_body(pool, srv.url()) == b"hello"
        assert pool.idle_count() == 0
        assert await get_body(pool, srv.url()) == b"hello"
        assert srv.accepted == 2


async def test_http10_response_is_not_reused(pool: ConnectionPool) -> None:
    raw = b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello"
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        assert await get_body(pool, srv.url()) == b"hello"
        assert await get_body(pool, srv.url()) == b"hello"
        assert srv.accepted == 2


@pytest.mark.parametrize("whole", [True, False], ids=["read", "chunks"])
async def test_close_delimited_body_is_read_to_the_end(pool: ConnectionPool, whole: bool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ")
        await asyncio.sleep(0.05)
        await peer.send(b"part two")

    async with asyncio.timeout(5), RawServer(handler) as srv:
        resp = await post(pool, srv.url())
        assert resp.status == 200
        body = await resp.read() if whole else b"".join([c async for c in resp.chunks()])
        assert body == b"part one, part two"
        assert pool.idle_count() == 0


async def test_no_content_response_has_an_empty_body(pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(answer(b"HTTP/1.1 204 No Content\r\n\r\n")) as srv:
        resp = await post(pool, srv.url())
        assert resp.status == 204
        assert await resp.read() == b""
        assert await get_body(pool, srv.url()) == b""
        assert srv.accepted == 1


async def test_informational_responses_are_skipped(pool: ConnectionPool) -> None:
    raw = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n"
           + OK_HELLO)
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        for _ in range(2):
            resp = await post(pool, srv.url())
            assert (resp.status, resp.headers) == (200, {"content-length": "5"})
            assert await resp.read() == b"hello"
        assert srv.accepted == 1


async def test_a_finished_response_cannot_touch_the_next_exchange(pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(answer(OK_HELLO)) as srv:
        first = await post(pool, srv.url())
        assert await first.read() == b"hello"
        with pytest.raises(ProtocolFailed):
            await first.read()
        second = await post(pool, srv.url())  # on the same connection
        first.close()  # must not drop the connection the second is using
        with pytest.raises(ProtocolFailed):
            await first.read()
        assert await second.read() == b"hello"
        assert srv.accepted == 1
        assert pool.idle_count() == 1


async def test_stopping_at_the_last_chunk_keeps_the_connection(pool: ConnectionPool) -> None:
    raw = CHUNKED_HEAD + chunked(b"data: 1\n\n", b"data: [DONE]\n\n")
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        # no aclose(): the pool gets the connection back before the last chunk is handed out
        async for chunk in (await post(pool, srv.url())).chunks():
            if chunk == b"data: [DONE]\n\n":
                break  # what an SSE reader does: it has what it needs
        assert pool.idle_count() == 1
        assert await get_body(pool, srv.url()) == b"data: 1\n\ndata: [DONE]\n\n"
        assert srv.accepted == 1


async def test_stopping_before_the_end_drops_the_connection(pool: ConnectionPool) -> None:
    raw = CHUNKED_HEAD + b"5\r\nfirst\r\n"  # the rest never comes

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(raw)
        await peer.wait_closed()

    async with asyncio.timeout(5), RawServer(handler) as srv:
        stream = (await post(pool, srv.url())).chunks()
        assert isinstance(stream, AsyncGenerator)
        assert await anext(stream) == b"first"
        await stream.aclose()
        assert pool.idle_count() == 0
        assert await closed_by_client(srv)


async def test_bytes_on_an_idle_connection_make_it_unusable(pool: ConnectionPool) -> None:
    async def handler(peer: Peer) -> None:
        if peer.server.accepted > 1:
            await answer(OK_HELLO)(peer)
            return
        await peer.request()
        await peer.send(OK_HELLO)
        await asyncio.sleep(0.05)  # the client has finished the exchange by now
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nSTALE")
        await peer.wait_closed()

    async with asyncio.timeout(5), RawServer(handler) as srv:
        assert await get_body(pool, srv.url()) == b"hello"
        assert await closed_by_client(srv)
        assert await get_body(pool, srv.url()) == b"hello"
        assert srv.accepted == 2


# -- cut and malformed responses -------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789",
    CHUNKED_HEAD + b"a\r\n0123456789\r\n",  # no last chunk
    CHUNKED_HEAD + b"64\r\n0123456789",  # a chunk cut short
], ids=["length", "chunked-no-end", "chunked-cut-chunk"])
async def test_body_cut_short_is_protocol_failed(pool: ConnectionPool, transport: Transport,
                                                 raw: bytes) -> None:
    async with asyncio.timeout(5), RawServer(answer_then_close(raw)) as srv:
        resp = await post(pool, srv.url())
        assert resp.status == 200
        with pytest.raises(ProtocolFailed):
            await resp.read()
        assert pool.idle_count() == 0

        resp = await post(pool, srv.url())
        with pytest.raises(ProtocolFailed):
            async for _ in resp.chunks():
                pass

        with pytest.raises(UpstreamBadResponse) as info:
            await transport.send(up(srv.url()), FAST, "fakeprov")
        assert info.value.provider == "fakeprov"


async def test_close_before_response_is_connect_failed(pool: ConnectionPool,
                                                       transport: Transport) -> None:
    async with asyncio.timeout(5), RawServer(answer_then_close(b"")) as srv:
        with pytest.raises(ConnectFailed):
            await post(pool, srv.url())
        assert pool.idle_count() == 0
        with pytest.raises(UpstreamUnavailable) as info:
            await transport.send(up(srv.url()), FAST, "fakeprov")
        assert info.value.code == "upstream_connection_failed"
        assert srv.accepted == 2


@pytest.mark.parametrize("raw", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n",
    CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n",
], ids=["garbage", "bad-status", "bad-length", "bad-chunk-size"])
async def test_malformed_response_is_protocol_failed(pool: ConnectionPool, transport: Transport,
                                                     raw: bytes) -> None:
    # the server keeps the connection open: the client must fail on the bytes, not on EOF
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(raw)
        await peer.wait_closed()

    async with asyncio.timeout(5), RawServer(handler) as srv:
        with pytest.raises(ProtocolFailed):
            await (await post(pool, srv.url())).read()
        assert pool.idle_count() == 0
        assert await closed_by_client(srv)
        with pytest.raises(UpstreamBadResponse):
            await transport.send(up(srv.url()), FAST, "fakeprov")


async def test_connection_refused_is_connect_failed(pool: ConnectionPool,
                                                    transport: Transport) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with asyncio.timeout(5):
        with pytest.raises(ConnectFailed) as info:
            await post(pool, url)
        assert isinstance(info.value.__cause__, ConnectionRefusedError)
        with pytest.raises(UpstreamUnavailable) as mapped:
            await transport.send(up(url), FAST, "fakeprov")
        assert mapped.value.code == "upstream_connection_failed"


# -- deadlines and cancellation --------------------------------------------------------------


async def hang(peer: Peer) -> None:
    """Take the request, never answer, notice when the client gives up."""
    await peer.request()
    await peer.wait_closed()


async def test_first_byte_timeout_drops_the_connection(pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(hang) as srv:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await post(pool, srv.url(), first_byte_s=0.2)
        assert 0.15 <= time.monotonic() - start < 1.5
        assert pool.idle_count() == 0
        assert await closed_by_client(srv)


async def test_total_deadline_bounds_the_wait_for_the_head(pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(hang) as srv:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await post(pool, srv.url(), first_byte_s=10, total_s=0.2)
        assert 0.15 <= time.monotonic() - start < 1.5


async def test_timeout_maps_to_upstream_timeout(transport: Transport) -> None:
    async with asyncio.timeout(5), RawServer(hang) as srv:
        with pytest.raises(UpstreamTimeout) as info:
            await transport.send(up(srv.url()), FAST, "fakeprov")
        assert info.value.provider == "fakeprov"


async def test_silence_between_chunks_times_out(pool: ConnectionPool,
                                                transport: Transport) -> None:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(CHUNKED_HEAD + b"5\r\nfirst\r\n")

    async with asyncio.timeout(5), RawServer(handler) as srv:
        resp = await post(pool, srv.url(), first_byte_s=0.2)
        stream = resp.chunks()
        assert await anext(stream) == b"first"
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await anext(stream)
        assert 0.15 <= time.monotonic() - start < 1.5
        assert pool.idle_count() == 0

        opened = await transport.open(up(srv.url()), FAST, "fakeprov")
        with pytest.raises(UpstreamTimeout):
            async for _ in opened.chunks():
                pass


async def test_total_deadline_cuts_a_trickling_stream(pool: ConnectionPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD)
        for _ in range(100):
            await peer.send(b"4\r\ntick\r\n")
            await asyncio.sleep(0.05)
        await peer.send(b"0\r\n\r\n")

    async with asyncio.timeout(5), RawServer(handler) as srv:
        start = time.monotonic()
        resp = await post(pool, srv.url(), first_byte_s=5, total_s=0.3)
        ticks = 0
        with pytest.raises(TimeoutError):
            async for _ in resp.chunks():
                ticks += 1
        assert 0.25 <= time.monotonic() - start < 1.5
        assert ticks >= 2
        assert pool.idle_count() == 0


async def test_total_deadline_cuts_a_stream_that_never_pauses(pool: ConnectionPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD)
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            await peer.send(b"4000\r\n" + b"a" * 0x4000 + b"\r\n")
        await peer.send(b"0\r\n\r\n")

    async with asyncio.timeout(5), RawServer(handler) as srv:
        start = time.monotonic()
        resp = await post(pool, srv.url(), first_byte_s=5, total_s=0.3)
        with pytest.raises(TimeoutError):
            async for _ in resp.chunks():
                await asyncio.sleep(0.001)  # a reader a little slower than the server
        assert time.monotonic() - start < 1.0


async def test_cancel_while_waiting_for_the_head_drops_the_connection(
        pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(hang) as srv:
        task = asyncio.create_task(post(pool, srv.url()))
        while not srv.requests:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.idle_count() == 0
        assert await closed_by_client(srv)


@pytest.mark.parametrize("whole", [True, False], ids=["read", "chunks"])
async def test_cancel_while_reading_the_body_drops_the_connection(pool: ConnectionPool,
                                                                  whole: bool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
        await peer.wait_closed()

    async def consume(resp: Response) -> bytes:
        if whole:
            return await resp.read()
        return b"".join([chunk async for chunk in resp.chunks()])

    async with asyncio.timeout(5), RawServer(handler) as srv:
        resp = await post(pool, srv.url())
        task = asyncio.create_task(consume(resp))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.idle_count() == 0
        assert await closed_by_client(srv)


async def test_closing_an_unread_response_drops_the_connection(pool: ConnectionPool) -> None:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(CHUNKED_HEAD + b"5\r\nfirst\r\n")  # the rest never comes
        peer.server.client_closed.set()

    async with asyncio.timeout(5), RawServer(handler) as srv:
        resp = await post(pool, srv.url())
        resp.close()
        assert pool.idle_count() == 0
        assert await closed_by_client(srv)
        resp = await post(pool, srv.url())
        assert resp.status == 200
        assert srv.accepted == 2
        resp.close()


# -- content encoding ------------------------------------------------------------------------

PAYLOAD = b'{"choices": [{"text": "' + bytes(range(32, 127)) * 200 + b'"}]}'


@pytest.mark.parametrize(("encoding", "compress"), [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress),
    ("GZIP", gzip.compress),
])
async def test_compressed_body_read_whole(pool: ConnectionPool, encoding: str,
                                          compress: Callable[[bytes], bytes]) -> None:
    data = compress(PAYLOAD)
    raw = b"HTTP/1.1 200 OK\r\ncontent-encoding: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        encoding.encode(), len(data), data)
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        resp = await post(pool, srv.url())
        assert resp.headers["content-encoding"] == encoding
        assert await resp.read() == PAYLOAD
        assert await get_body(pool, srv.url()) == PAYLOAD  # the next exchange inflates afresh
        assert srv.accepted == 1


async def test_gzip_body_streamed_in_chunks(pool: ConnectionPool) -> None:
    data = gzip.compress(PAYLOAD)
    pieces = [data[i:i + 97] for i in range(0, len(data), 97)]

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\n"
                        b"transfer-encoding: chunked\r\n\r\n")
        for piece in pieces:
            await peer.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            await asyncio.sleep(0.001)
        await peer.send(b"0\r\n\r\n")
        await peer.wait_closed()

    async with asyncio.timeout(5), RawServer(handler) as srv:
        got = [chunk async for chunk in (await post(pool, srv.url())).chunks()]
        assert b"".join(got) == PAYLOAD
        assert all(got)  # no empty chunks from pieces that inflate to nothing


async def test_accept_encoding_is_sent_by_default_and_can_be_replaced(
        pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(answer(OK_HELLO)) as srv:
        await get_body(pool, srv.url())
        await (await post(pool, srv.url(), headers={"accept-encoding": "identity"})).read()
        default, replaced = srv.requests
        assert b"\r\naccept-encoding: gzip, deflate\r\n" in default
        assert replaced.count(b"accept-encoding") == 1
        assert b"\r\naccept-encoding: identity\r\n" in replaced


async def test_accept_encoding_is_replaced_whatever_the_case(pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(answer(OK_HELLO)) as srv:
        await (await post(pool, srv.url(), headers={"Accept-Encoding": "identity"})).read()
        assert srv.requests[0].lower().count(b"accept-encoding") == 1


def flip_crc(data: bytes) -> bytes:
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]


@pytest.mark.parametrize("body", [b"this is not gzip", flip_crc(gzip.compress(PAYLOAD))],
                         ids=["not-gzip", "bad-crc"])
async def test_corrupt_gzip_is_protocol_failed(pool: ConnectionPool, transport: Transport,
                                               body: bytes) -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body), body)
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        with pytest.raises(ProtocolFailed):
            await (await post(pool, srv.url())).read()
        assert pool.idle_count() == 0
        with pytest.raises(UpstreamBadResponse):
            await transport.send(up(srv.url()), FAST, "fakeprov")


async def test_truncated_gzip_is_protocol_failed(pool: ConnectionPool) -> None:
    cut = gzip.compress(PAYLOAD)[:200]
    # close-delimited: the gzip trailer is the only sign that the body is incomplete
    raw = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\n\r\n" + cut
    async with asyncio.timeout(5), RawServer(answer_then_close(raw)) as srv:
        with pytest.raises(ProtocolFailed):
            await (await post(pool, srv.url())).read()


# -- the request's bytes ---------------------------------------------------------------------


def parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    return line, [(n, v.strip()) for n, _, v in (f.partition(":") for f in fields)], body


async def test_request_bytes(pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(answer(OK_HELLO)) as srv:
        body = b'{"model": "m"}'
        headers = {"authorization": "Bearer sk-1", "content-type": "application/json"}
        await (await post(pool, srv.url("/v1/chat/completions?a=1&b=x%20y"), headers=headers,
                          body=body)).read()
        line, fields, sent = parse_head(srv.requests[0])
        assert line == "POST /v1/chat/completions?a=1&b=x%20y HTTP/1.1"
        assert sorted(fields) == sorted([
            ("host", f"127.0.0.1:{srv.port}"), ("authorization", "Bearer sk-1"),
            ("content-type", "application/json"), ("accept-encoding", "gzip, deflate"),
            ("content-length", str(len(body))),
        ])
        assert sent == body


async def test_request_target_and_host_without_path_or_userinfo(pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(answer(OK_HELLO)) as srv:
        await (await pool.request("GET", f"http://user:secret@127.0.0.1:{srv.port}", {}, b"",
                                  connect_s=2, first_byte_s=2, total_s=4)).read()
        line, fields, _ = parse_head(srv.requests[0])
        assert line == "GET / HTTP/1.1"
        assert ("host", f"127.0.0.1:{srv.port}") in fields
        assert b"secret" not in srv.requests[0]
        assert ("content-length", "0") in fields


@pytest.mark.parametrize("headers", [
    {"x-evil": "a\r\nx-injected: 1"}, {"x-evil": "a\nx-injected: 1"}, {"x-evil": "a\rb"},
    {"x-evil\r\nx-injected": "1"},
], ids=["crlf-value", "lf-value", "cr-value", "crlf-name"])
async def test_line_break_in_a_header_is_refused_before_sending(
        pool: ConnectionPool, transport: Transport, headers: dict[str, str]) -> None:
    async with asyncio.timeout(5), RawServer(answer(OK_HELLO)) as srv:
        with pytest.raises(ValueError):
            await post(pool, srv.url(), headers=headers)
        with pytest.raises(UpstreamUnavailable) as info:
            await transport.send(UpstreamRequest(srv.url(), headers, b"{}"), FAST, "fakeprov")
        assert info.value.code == "upstream_request_invalid"
        await asyncio.sleep(0.05)
        assert srv.requests == []
        assert srv.accepted == 0


@pytest.mark.parametrize("url", ["ftp://x/y", "http:///no-host", "no scheme at all"])
async def test_a_non_http_url_is_refused(pool: ConnectionPool, transport: Transport,
                                         url: str) -> None:
    async with asyncio.timeout(5):
        with pytest.raises(ValueError):
            await post(pool, url)
        with pytest.raises(UpstreamUnavailable) as info:
            await transport.send(up(url), FAST, "fakeprov")
        assert info.value.code == "upstream_request_invalid"


# -- back-pressure ---------------------------------------------------------------------------

BIG = random.Random(7).randbytes(2 * 1024 * 1024)


async def test_large_body_to_a_slow_reader_arrives_whole(pool: ConnectionPool) -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(BIG), BIG)
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        got: list[bytes] = []
        async for chunk in (await post(pool, srv.url())).chunks():
            got.append(chunk)
            await asyncio.sleep(0.002)
        assert len(got) > 1
        assert b"".join(got) == BIG
        assert pool.idle_count() == 1  # drained, so reading resumed and the exchange ended
        assert await get_body(pool, srv.url()) == BIG
        assert srv.accepted == 1


async def test_an_unread_body_stops_the_socket_being_read(pool: ConnectionPool) -> None:
    # more than the kernel's socket buffers can hold (their maximum here is tens of MB): if
    # the client kept reading into memory, the server would hand it all off at once
    size = 64 * 1024 * 1024
    sent = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size
                        + b"x" * size)
        sent.set()
        await peer.wait_closed()

    async with asyncio.timeout(5), RawServer(handler) as srv:
        resp = await post(pool, srv.url())
        await asyncio.sleep(0.3)
        assert not sent.is_set()
        received = 0
        async for chunk in resp.chunks():
            received += len(chunk)
        assert received == size
        assert sent.is_set()


# -- keep-alive expiry -----------------------------------------------------------------------


async def test_idle_connection_expires_after_keepalive() -> None:
    pool = ConnectionPool(keepalive_s=0.1)
    try:
        async with asyncio.timeout(5), RawServer(answer(OK_HELLO)) as srv:
            assert await get_body(pool, srv.url()) == b"hello"
            assert await get_body(pool, srv.url()) == b"hello"
            assert srv.accepted == 1
            await asyncio.sleep(0.2)
            assert await get_body(pool, srv.url()) == b"hello"
            assert srv.accepted == 2
            assert await closed_by_client(srv)  # the expired one was closed, not leaked
    finally:
        await pool.close()


async def test_idle_connection_closed_by_the_server_is_not_reused(pool: ConnectionPool) -> None:
    async with asyncio.timeout(5), RawServer(answer_then_close(OK_HELLO)) as srv:
        assert await get_body(pool, srv.url()) == b"hello"
        await asyncio.sleep(0.1)  # the server's FIN reaches the client
        assert await get_body(pool, srv.url()) == b"hello"
        assert srv.accepted == 2


async def test_bytes_past_the_end_of_a_response_do_not_join_its_body(
        pool: ConnectionPool) -> None:
    raw = OK_HELLO + b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nSTALE"
    async with asyncio.timeout(5), RawServer(answer(raw)) as srv:
        assert await get_body(pool, srv.url()) == b"hello"


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


async def test_tls_with_a_trusted_ca(ca: trustme.CA, server_ssl: ssl.SSLContext) -> None:
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    pool = ConnectionPool(ssl_context=client_ssl)
    try:
        async with asyncio.timeout(5), RawServer(answer(OK_HELLO), ssl_context=server_ssl) as srv:
            for host in ("localhost", "localhost", "127.0.0.1"):
                assert await get_body(pool, srv.url("/v1", scheme="https", host=host)) == b"hello"
            assert srv.accepted == 2  # one per origin
            line, fields, _ = parse_head(srv.requests[0])
            assert line == "POST /v1 HTTP/1.1"
            assert ("host", f"localhost:{srv.port}") in fields
    finally:
        await pool.close()


async def test_tls_with_an_untrusted_certificate_is_connect_failed(
        pool: ConnectionPool, server_ssl: ssl.SSLContext) -> None:
    async with asyncio.timeout(5), RawServer(answer(OK_HELLO), ssl_context=server_ssl) as srv:
        with pytest.raises(ConnectFailed) as info:
            await post(pool, srv.url(scheme="https", host="localhost"))
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        assert srv.requests == []


# -- closing the pool ------------------------------------------------------------------------


async def test_close_drops_idle_connections_and_refuses_requests() -> None:
    pool = ConnectionPool()
    async with asyncio.timeout(5), RawServer(answer(OK_HELLO)) as srv:
        assert await get_body(pool, srv.url()) == b"hello"
        assert pool.idle_count() == 1
        await pool.close()
        assert pool.idle_count() == 0
        assert await closed_by_client(srv)
        with pytest.raises(ConnectFailed):
            await post(pool, srv.url())
        assert srv.accepted == 1


async def test_a_busy_connection_is_not_kept_after_close() -> None:
    go = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + b"5\r\nhello\r\n")
        await go.wait()
        await peer.send(b"0\r\n\r\n")
        await peer.wait_closed()

    pool = ConnectionPool()
    async with asyncio.timeout(5), RawServer(handler) as srv:
        resp = await post(pool, srv.url())
        await pool.close()
        go.set()
        assert await resp.read() == b"hello"
        assert pool.idle_count() == 0
        assert await closed_by_client(srv)


# -- releasing a stream before its framing ends ----------------------------------------------


def stream_then(tail: Callable[[Peer], Awaitable[None]]) -> Handler:
    """Each request: a chunked head and one event, then ``tail`` decides how the body ends."""

    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(CHUNKED_HEAD + b"6\r\n[DONE]\r\n")
            await tail(peer)
        peer.server.client_closed.set()

    return handler


async def test_released_stream_returns_its_connection_when_the_body_ends(
        pool: ConnectionPool) -> None:
    async def late_end(peer: Peer) -> None:
        await asyncio.sleep(0.05)  # the terminal chunk comes after the caller let go
        await peer.send(b"0\r\n\r\n")

    async with asyncio.timeout(5), RawServer(stream_then(late_end)) as srv:
        for _ in range(2):
            resp = await post(pool, srv.url())
            chunks = resp.chunks()
            assert await anext(chunks) == b"[DONE]"
            resp.release()
            resp.close()  # a close after release keeps the connection (the engine does both)
            await chunks.aclose()
            for _ in range(100):
                if pool.idle_count() == 1:
                    break
                await asyncio.sleep(0.01)
            assert pool.idle_count() == 1
        assert srv.accepted == 1


async def test_released_stream_that_goes_on_is_dropped(pool: ConnectionPool) -> None:
    async def more(peer: Peer) -> None:
        try:
            for _ in range(40):  # ~80 KB more than anyone reads
                await peer.send(b"800\r\n" + b"x" * 0x800 + b"\r\n")
                await asyncio.sleep(0)
            await peer.wait_closed()
        except ConnectionError:  # dropped while sending: what the test wants
            peer.server.client_closed.set()

    async with asyncio.timeout(5), RawServer(stream_then(more)) as srv:
        resp = await post(pool, srv.url())
        assert await anext(resp.chunks()) == b"[DONE]"
        resp.release()
        assert await closed_by_client(srv)
        assert pool.idle_count() == 0


async def test_released_stream_that_never_ends_is_dropped_after_the_grace(
        pool: ConnectionPool) -> None:
    async def silence(peer: Peer) -> None:
        await peer.wait_closed()

    async with asyncio.timeout(5), RawServer(stream_then(silence)) as srv:
        resp = await post(pool, srv.url())
        assert await anext(resp.chunks()) == b"[DONE]"
        started = time.monotonic()
        resp.release(grace_s=0.1)
        assert await closed_by_client(srv)
        assert time.monotonic() - started >= 0.09
        assert pool.idle_count() == 0
