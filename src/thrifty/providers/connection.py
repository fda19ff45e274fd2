"""One keep-alive HTTP/1.1 connection to an upstream and the response it is reading: the
parser's callbacks (llhttp, through ``httptools``) fill in the current exchange, the reading
coroutine waits for them, and the body is handed over whole or chunk by chunk. The pool that
opens, reuses and expires connections is ``http1.ConnectionPool``."""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import AsyncGenerator, Hashable
from typing import Any, Protocol, cast

import httptools

_HIGH_WATER = 256 * 1024
"""Buffered body bytes past which the socket stops being read until the reader catches up."""
_LOW_WATER = 64 * 1024


class ConnectFailed(ConnectionError):
    """No response came back: the connection could not be opened, or closed before the
    response's head arrived."""


class ProtocolFailed(Exception):
    """The response was malformed, or its body ended before its declared end."""


class Pool(Protocol):
    def release(self, conn: Connection) -> None:
        """Take back a connection whose exchange ended cleanly."""


class Response:
    """The head of a response, and its body read whole (``read``) or chunk by chunk
    (``chunks``). Header names are lowercase. A body read to its end returns the connection
    to its pool; ``close()`` drops an unfinished one's connection. Once the exchange is over
    the connection may carry another, so every method first checks it is still its own."""

    __slots__ = ("_conn", "_exchange", "headers", "status")

    def __init__(self, conn: Connection, status: int, headers: dict[str, str]) -> None:
        self._conn = conn
        self._exchange = conn.exchange
        self.status = status
        self.headers = headers

    def _live(self) -> Connection:
        conn = self._conn
        if conn.exchange != self._exchange or conn.released:
            raise ProtocolFailed("this response's body was already read or dropped")
        return conn

    async def read(self) -> bytes:
        conn = self._live()
        parts: list[bytes] = []
        try:
            while True:
                while conn.chunks:  # taking them resumes a paused socket
                    parts.append(conn.take())
                if conn.complete:
                    break
                await conn.wait()
        except BaseException:
            conn.abandon()
            raise
        conn.finish()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        conn = self._live()
        try:
            while True:
                while conn.chunks:
                    chunk = conn.take()
                    if conn.complete and not conn.chunks:
                        break
                    yield chunk
                else:
                    if conn.complete:
                        conn.finish()
                        return
                    await conn.wait()
                    continue
                # The last chunk: the connection goes back to the pool before the caller
                # gets it, since a caller that has what it needs stops iterating here.
                conn.finish()
                yield chunk
                return
        except BaseException:
            if self._owns(conn):
                conn.abandon()
            raise

    def close(self) -> None:
        """Drop the connection now (the caller is gone: stop the upstream's work)."""
        if self._owns(self._conn):
            self._conn.abandon()

    def release(self, grace_s: float = 1.0) -> None:
        """The caller read all it needs (an SSE stream's last event), though the body's
        framing may not have ended yet: the connection goes back to the pool if it ends
        within ``grace_s`` and nothing much else arrives; otherwise it is dropped."""
        if self._owns(self._conn):
            self._conn.linger(grace_s)

    def _owns(self, conn: Connection) -> bool:
        """Still this response's exchange, unfinished, and not already let go."""
        return conn.exchange == self._exchange and not conn.released and not conn.lingering


class Connection(asyncio.Protocol):
    """One keep-alive connection, one exchange at a time. The parser's callbacks fill in
    the current exchange; the reading coroutine waits on ``_waiter``."""

    def __init__(self, pool: Pool, key: Hashable) -> None:
        self.pool = pool
        self.key = key
        """The pool's name for where this connection goes (scheme, host, port)."""
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.exchange = 0
        """Counts the exchanges: a :class:`Response` acts only while its own is current."""
        self.released = True
        # the current exchange
        self._waiter: asyncio.Future[None] | None = None
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.headers: dict[str, str] | None = None
        self.chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._inflate: Any = None
        self._delimited = True
        self._informational = False
        self.complete = False
        self.keep_alive = False
        self._error: BaseException | None = None
        self.deadline = 0.0
        self.gap_s = 0.0
        self.lingering = False
        self._timer: asyncio.TimerHandle | None = None
        """The waits' deadline while the body is read; the grace while it lingers."""
        self._wait_since = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.released:  # bytes nobody asked for: the connection cannot be trusted
            self.abandon()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.complete:  # the answer is whole; the connection is not to be trusted
                self._close()
                return
            self._fail(ProtocolFailed(f"malformed response ({exc})"))
            self.abandon()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.released or self.complete:
            return
        if self.headers is None:
            self._fail(ConnectFailed("the connection closed before a response arrived"))
        elif not self._delimited:  # the body ran to the end of the connection: complete
            self.on_message_complete()
        else:
            self._fail(ProtocolFailed("the connection closed before the body was complete"))

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second response in the same packet: nobody asked for it
            raise ProtocolFailed("the server sent more than one response")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue, 103 Early Hints: the answer comes after
            self._raw_headers = []
            self._informational = True
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in self._raw_headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.status = status
        self.headers = headers
        self._delimited = "content-length" in headers or "transfer-encoding" in headers
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "deflate", "x-gzip"):
            self._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)  # either header
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.lingering:  # nobody reads it: count it, keep none of it
            self._buffered += len(body)
            if self._buffered > _LOW_WATER:
                self.abandon()
            return
        if self._inflate is not None:
            try:
                body = self._inflate.decompress(body)
            except zlib.error as exc:
                raise ProtocolFailed(f"the body does not decompress ({exc})") from None
            if not body:
                return
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self._inflate is not None:
            rest = self._inflate.flush()
            if rest:
                self.chunks.append(rest)
            if not self._inflate.eof:  # the framing ended, the compressed data did not
                self._fail(ProtocolFailed("the compressed body was cut short"))
                return
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it after this call
        self.complete = True
        if self.lingering:
            self.finish()
            return
        self._wake()

    # -- the exchange ----------------------------------------------------------------------

    def begin(self, deadline: float, gap_s: float) -> None:
        self.exchange += 1
        self.released = False
        self._raw_headers = []
        self.status, self.headers, self.complete, self._error = 0, None, False, None
        self.keep_alive = False
        self._inflate, self._buffered, self._informational = None, 0, False
        self.chunks.clear()
        self.deadline, self.gap_s = deadline, gap_s
        self.lingering = False

    async def wait_head(self) -> Response:
        while self.headers is None:
            await self.wait()
        return Response(self, self.status, self.headers)

    def take(self) -> bytes:
        if not self.complete and self.loop.time() >= self.deadline:
            # a body that never pauses never waits, so the total deadline is checked here
            self.abandon()
            raise TimeoutError
        chunk = self.chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < _LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    async def wait(self) -> None:
        """Until the head, more of the body or the end arrives; at most ``gap_s`` from now,
        and not past the exchange's deadline."""
        if self._error is not None:
            raise self._error
        if self.complete or (self.headers is not None and self.chunks):
            return
        loop = self.loop
        waiter = self._waiter = loop.create_future()
        self._wait_since = loop.time()
        if self._timer is None:
            # One timer per exchange, not one per wait (a stream waits once a chunk): when
            # it fires early for the wait then current, it sets itself again (``_check``).
            self._timer = loop.call_at(self._due(), self._check)
        try:
            await waiter
        except BaseException:
            self.abandon()  # a timeout, or the caller was cancelled: the exchange is lost
            raise
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _due(self) -> float:
        return min(self._wait_since + self.gap_s, self.deadline)

    def _check(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next wait sets the timer again
        due = self._due()
        if self.loop.time() >= due:
            waiter.set_exception(TimeoutError())
        else:
            self._timer = self.loop.call_at(due, self._check)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._wake()

    def linger(self, grace_s: float) -> None:
        """See :meth:`Response.release`."""
        self.chunks.clear()
        self._buffered = 0
        if self.complete:
            self.finish()
            return
        self.lingering = True
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._stop_timer()  # nobody waits now
        self._timer = self.loop.call_later(grace_s, self._linger_expired, self.exchange)

    def _linger_expired(self, exchange: int) -> None:
        self._timer = None
        if self.exchange == exchange and not self.released:
            self.abandon()

    def finish(self) -> None:
        """The exchange was read to its end: back to the pool if the server keeps it."""
        if self.released:
            return
        self.released = True
        self._stop_timer()
        if self.closed or not self.keep_alive or self._paused:
            self._close()
        else:
            self.idle_since = self.loop.time()
            self.pool.release(self)

    def abandon(self) -> None:
        """Unread response or a lost exchange: the connection cannot carry another."""
        self.released = True
        self._stop_timer()
        self._close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
