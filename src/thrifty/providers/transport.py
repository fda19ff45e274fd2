"""The one place that does upstream HTTP: keep-alive connections shared by every provider
(``http1.ConnectionPool``), and the mapping of transport failures onto the error tree.
Adapters never see the client; swapping it touches this module only."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from thrifty.errors import (
    ThriftyError,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from thrifty.providers.base import UpstreamRequest
from thrifty.providers.http1 import ConnectFailed, ConnectionPool, ProtocolFailed, Response


@dataclass(frozen=True, slots=True)
class Deadlines:
    connect_s: float = 10.0
    first_byte_s: float = 120.0
    """Also the longest silence allowed between stream chunks."""
    total_s: float = 600.0


@dataclass(slots=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class UpstreamStream:
    """An open upstream response whose body is read whole or chunk by chunk. Header names
    are lowercase."""

    __slots__ = ("_provider", "_resp", "headers", "status")

    def __init__(self, resp: Response, provider: str) -> None:
        self._resp = resp
        self._provider = provider
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read_all(self) -> bytes:
        try:
            return await self._resp.read()
        except BaseException as exc:
            raise _map_exception(exc, self._provider) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.chunks():
                yield chunk
        except (TimeoutError, ConnectFailed, ProtocolFailed, OSError) as exc:
            raise _map_exception(exc, self._provider) from exc

    def close(self) -> None:
        """Drop the connection: an unfinished stream must not return to the pool (and
        closing it is how the provider learns to stop generating)."""
        self._resp.close()

    def release(self) -> None:
        """The stream's last event is in: keep the connection if the body ends now."""
        self._resp.release()


class Transport:
    def __init__(self, *, keepalive_s: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = ConnectionPool(keepalive_s=keepalive_s, ssl_context=ssl_context)

    @property
    def connections_opened(self) -> int:
        return self._pool.opened

    async def close(self) -> None:
        await self._pool.close()

    async def send(self, up: UpstreamRequest, deadlines: Deadlines, provider: str) -> RawResponse:
        stream = await self.open(up, deadlines, provider)
        body = await stream.read_all()
        return RawResponse(stream.status, stream.headers, body)

    async def open(
        self, up: UpstreamRequest, deadlines: Deadlines, provider: str
    ) -> UpstreamStream:
        try:
            resp = await self._pool.request(
                "POST", up.url, up.headers, up.body, connect_s=deadlines.connect_s,
                first_byte_s=deadlines.first_byte_s, total_s=deadlines.total_s)
        except BaseException as exc:
            raise _map_exception(exc, provider) from exc
        return UpstreamStream(resp, provider)


def _map_exception(exc: BaseException, provider: str) -> BaseException:
    if isinstance(exc, ThriftyError | asyncio.CancelledError):
        return exc
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"provider {provider} did not answer in time", provider=provider)
    if isinstance(exc, ProtocolFailed):
        return UpstreamBadResponse(
            f"provider {provider} sent an incomplete or malformed body", provider=provider
        )
    if isinstance(exc, ValueError):  # a URL or header that cannot be sent (no value shown)
        return UpstreamUnavailable(f"provider {provider}: the request cannot be sent ({exc})",
                                   provider=provider, code="upstream_request_invalid")
    if isinstance(exc, OSError):  # ConnectFailed, and resets while sending
        return UpstreamUnavailable(
            f"provider {provider} connection failed ({type(exc).__name__})", provider=provider,
            code="upstream_connection_failed",
        )
    return exc
