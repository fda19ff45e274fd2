"""The fast path: an HTTP/1.1 front on llhttp (httptools) that serves the API routes itself
and hands every other connection to aiohttp.

Measured (benchmarks/RESULTS.md, issue 6): aiohttp's server was about a third of the
gateway's CPU per proxied request. Each connection starts here. A request head is read
whole; a well-formed HTTP/1.1 ``POST /v1/chat/completions`` (or ``/chat/completions``)
with a Content-Length within the body limit, or ``GET /v1/models``, is answered here,
through the same :class:`ChatEndpoint` that aiohttp's handlers call. Anything else (other
routes, chunked bodies, upgrades, HTTP/1.0, malformed or oversized heads and bodies) hands
the connection, from that request's first byte, to aiohttp's ``RequestHandler``, which
serves it for the rest of its life and answers errors as it always has. Requests are framed
here (head up to the blank line, then Content-Length bytes), not by the parser, so a
hand-over always starts at an exact request boundary, even mid-connection."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from typing import cast

import httptools

from thrifty.core.ids import new_request_id
from thrifty.errors import ThriftyError
from thrifty.server.chat import Answer, ChatEndpoint, EventStream, error_answer

log = logging.getLogger("thrifty.server")

MAX_HEAD = 64 * 1024
"""A head not ended within this goes to aiohttp, which answers it (400/431)."""
KEEPALIVE_S = 75.0
"""An idle connection is closed after this (aiohttp's default, kept for the same clients)."""
PAUSE_READING_AT = 256 * 1024
"""Pipelined bytes buffered while a request is being answered before reading pauses."""
_CHAT, _MODELS = 1, 2
_ROUTES = {(b"POST", b"/v1/chat/completions"): _CHAT, (b"POST", b"/chat/completions"): _CHAT,
           (b"GET", b"/v1/models"): _MODELS, (b"GET", b"/models"): _MODELS}
_STATUS = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n" for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class FastPath:
    """The protocol factory for the listening socket, and what its connections share."""

    def __init__(self, api: ChatEndpoint, max_body: int,
                 fallback: Callable[[], asyncio.Protocol],
                 keepalive_s: float = KEEPALIVE_S) -> None:
        self.api = api
        self.max_body = max_body
        self.fallback = fallback  # aiohttp's Server: calling it makes a RequestHandler
        self.keepalive_s = keepalive_s
        self.connections: set[Connection] = set()
        self.closing = False
        self.handed_over = 0
        """Connections given to aiohttp (for tests and the curious)."""
        self._date = ("", 0)

    def __call__(self) -> Connection:
        return Connection(self)

    def date(self) -> str:
        now = int(time.time())
        if self._date[1] != now:
            self._date = (formatdate(now, usegmt=True), now)
        return self._date[0]

    def close_idle(self) -> None:
        """Shutting down: no new requests; idle connections close now, busy ones after
        their response."""
        self.closing = True
        for c in list(self.connections):
            if c.task is None:
                c.close()

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the requests in flight, then cancel the rest."""
        tasks = {c.task for c in self.connections if c.task is not None}
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for t in late:
                t.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        for c in list(self.connections):
            c.close()


class _Head:
    """httptools' callbacks for one head, fed whole: header names in lower case, the
    first of repeated headers kept and bytes decoded as UTF-8 (as aiohttp's
    ``headers.get`` returns them)."""

    __slots__ = ("headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.setdefault(name.decode("latin-1").lower(),
                                value.decode("utf-8", "surrogateescape"))


class _Pending:
    """A parsed head whose body is still arriving."""

    __slots__ = ("headers", "keep_alive", "route", "size", "start")

    def __init__(self, route: int, headers: dict[str, str], start: int, size: int,
                 keep_alive: bool) -> None:
        self.route, self.headers, self.keep_alive = route, headers, keep_alive
        self.start, self.size = start, size  # the body's offset in the buffer, its length


class Connection(asyncio.Protocol):
    """One client connection, one request at a time (pipelined ones wait in the buffer)."""

    def __init__(self, front: FastPath) -> None:
        self.front = front
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: _Pending | None = None
        self.task: asyncio.Task[None] | None = None
        self.idle_since = self.loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._read_paused = False
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._answering = False  # some of the current response has been written

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it
        self.front.connections.add(self)
        self._timer = self.loop.call_later(self.front.keepalive_s, self._on_timer)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.idle_since = self.loop.time()  # idle means no bytes either way, not slow
        if self.task is None:
            self._next()
        elif len(self.buf) > PAUSE_READING_AT and not self._read_paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self._read_paused = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        self.transport = None
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("the client closed"))
        if self.task is not None:  # the handler's work stops with its client, as in aiohttp
            self.task.cancel()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- framing ---------------------------------------------------------------------------
    def _next(self) -> None:
        """Start the next request if the buffer holds all of it."""
        p = self.pending
        if p is None:
            p = self.pending = self._parse_head()
            if p is None:
                return
        end = p.start + p.size
        if len(self.buf) < end:
            return  # the body is still arriving
        body = bytes(self.buf[p.start:end])
        del self.buf[:end]
        self.pending = None
        self.task = self.loop.create_task(self._serve(p, body))

    def _parse_head(self) -> _Pending | None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self._hand_over()
            return None
        head = _Head()
        parser = httptools.HttpRequestParser(head)
        try:
            parser.feed_data(self.buf[:end + 4])
        except httptools.HttpParserError:  # malformed, or an upgrade: aiohttp's to answer
            self._hand_over()
            return None
        route = _ROUTES.get((parser.get_method(), head.url.partition(b"?")[0]))
        h = head.headers
        size = h.get("content-length", "0")
        if (route is None or parser.get_http_version() != "1.1" or "transfer-encoding" in h
                or not (size.isascii() and size.isdigit()) or int(size) > self.front.max_body):
            self._hand_over()
            return None
        if len(self.buf) - end - 4 < int(size) and h.get("expect", "").lower() == "100-continue":
            assert self.transport is not None
            self.transport.write(_CONTINUE)
        return _Pending(route, h, end + 4, int(size), parser.should_keep_alive())

    def _hand_over(self) -> None:
        """From here on, aiohttp serves this connection, starting with the buffered bytes."""
        transport = self.transport
        assert transport is not None
        self._forget()
        if self._read_paused:
            transport.resume_reading()
        handler = self.front.fallback()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        data, self.buf = bytes(self.buf), bytearray()
        if data:
            handler.data_received(data)
        self.front.handed_over += 1

    # -- answering -------------------------------------------------------------------------
    async def _serve(self, p: _Pending, body: bytes) -> None:
        keep_alive = p.keep_alive
        try:
            if p.route == _CHAT:
                answer = await self.front.api.chat(p.headers, _Body(body))
            else:
                answer = await self.front.api.models(p.headers)
            if isinstance(answer, Answer):
                self._write_answer(answer, keep_alive and not self.front.closing)
            else:
                keep_alive = await self._write_stream(answer, keep_alive)
        except Exception:
            # Outside the endpoint's own catch-all: a bug here; this connection is done.
            log.exception("unexpected error answering a request")
            answer = error_answer(ThriftyError("The gateway hit an unexpected error"),
                                  new_request_id())
            if self.transport is not None and not self._answering:
                self._write_answer(answer, False)
            keep_alive = False
        finally:
            self.task = None
            self._answering = False
        self._after(keep_alive)

    def _after(self, keep_alive: bool) -> None:
        t = self.transport
        if t is None:
            return
        if not keep_alive or self.front.closing:
            self.close()
            return
        self.idle_since = self.loop.time()
        if self._read_paused:
            t.resume_reading()
            self._read_paused = False
        if self.buf:
            self._next()

    def _write_answer(self, a: Answer, keep_alive: bool) -> None:
        assert self.transport is not None
        head = self._head(a.status, a.headers, keep_alive,
                          f"content-type: application/json\r\ncontent-length: {len(a.body)}\r\n")
        self.transport.write(head + a.body)

    async def _write_stream(self, es: EventStream, keep_alive: bool) -> bool:
        """Chunked server-sent events; the head leaves with the first event. True if the
        connection can take another request."""
        head: bytes | None = self._head(200, es.headers, keep_alive,
                                        "transfer-encoding: chunked\r\n")

        async def write(data: bytes) -> None:
            nonlocal head
            t = self.transport
            if t is None:
                raise ConnectionResetError("the client closed")
            if not data:
                return
            frame = b"%x\r\n%b\r\n" % (len(data), data)
            if head is not None:
                frame, head = head + frame, None
                self._answering = True
            t.write(frame)
            if self._write_paused:  # the client reads slower than the upstream writes
                self._drained = self.loop.create_future()
                await self._drained

        if not await self.front.api.pump(es, write):
            return False
        t = self.transport
        if t is None:
            return False
        t.write((head or b"") + b"0\r\n\r\n")
        return keep_alive and not self.front.closing

    def _head(self, status: int, headers: Mapping[str, str], keep_alive: bool,
              framing: str) -> bytes:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if lines.count("\n") != len(headers):  # a value with a line break: never sent as is
            lines = "".join(f"{k}: {_one_line(v)}\r\n" for k, v in headers.items())
        close = "" if keep_alive else "connection: close\r\n"
        return (f"{_status_line(status)}{framing}date: {self.front.date()}\r\n{lines}{close}\r\n"
                .encode())

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _forget(self) -> None:
        self.front.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        """Close a connection idle for ``keepalive_s`` (a client that sent half a head and
        stalled included); otherwise look again when it could next be."""
        idle_for = self.loop.time() - self.idle_since
        if self.task is None and idle_for >= self.front.keepalive_s:
            self._timer = None
            self.close()
            return
        wait = self.front.keepalive_s - idle_for if self.task is None else self.front.keepalive_s
        self._timer = self.loop.call_later(max(wait, 0.01), self._on_timer)


class _Body:
    """The endpoint's ``read()`` over a body already in hand."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __call__(self) -> bytes:
        return self.body


def _status_line(status: int) -> str:
    return _STATUS.get(status) or f"HTTP/1.1 {status} Unknown\r\n"


def _one_line(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")
