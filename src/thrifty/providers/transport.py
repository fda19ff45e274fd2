"""The one place that does upstream HTTP: a pooled keep-alive aiohttp session shared by
every provider, and the mapping of transport failures onto the error tree. Adapters never
see aiohttp; swapping the client touches this module only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

from thrifty.errors import (
    ThriftyError,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from thrifty.providers.base import UpstreamRequest


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
    """An open upstream response whose body is read chunk by chunk."""

    def __init__(self, resp: aiohttp.ClientResponse, provider: str) -> None:
        self._resp = resp
        self._provider = provider
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read_all(self) -> bytes:
        try:
            return await self._resp.read()
        except BaseException as exc:
            raise _map_exception(exc, self._provider) from exc
        finally:
            self._resp.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _map_exception(exc, self._provider) from exc

    def close(self) -> None:
        """Drop the connection: an unfinished stream must not return to the pool."""
        self._resp.close()


_TIMEOUTS_KEPT = 1024


class Transport:
    def __init__(self, *, limit: int = 0) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[Deadlines, aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, up: UpstreamRequest, deadlines: Deadlines, provider: str) -> RawResponse:
        stream = await self.open(up, deadlines, provider)
        body = await stream.read_all()
        return RawResponse(stream.status, stream.headers, body)

    async def open(
        self, up: UpstreamRequest, deadlines: Deadlines, provider: str
    ) -> UpstreamStream:
        timeout = self._timeouts.get(deadlines)
        if timeout is None:  # requests share a few deadline sets: one object each
            if len(self._timeouts) >= _TIMEOUTS_KEPT:
                self._timeouts.clear()
            timeout = self._timeouts[deadlines] = aiohttp.ClientTimeout(
                total=deadlines.total_s,
                sock_connect=deadlines.connect_s,
                sock_read=deadlines.first_byte_s,
            )
        try:
            resp = await self._get_session().post(
                up.url, data=up.body, headers=up.headers, timeout=timeout
            )
        except BaseException as exc:
            raise _map_exception(exc, provider) from exc
        return UpstreamStream(resp, provider)


def _map_exception(exc: BaseException, provider: str) -> BaseException:
    if isinstance(exc, ThriftyError | asyncio.CancelledError):
        return exc
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's timeouts subclass this
        return UpstreamTimeout(f"provider {provider} did not answer in time", provider=provider)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamBadResponse(
            f"provider {provider} sent an incomplete or malformed body", provider=provider
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UpstreamUnavailable(
            f"provider {provider} connection failed ({type(exc).__name__})", provider=provider,
            code="upstream_connection_failed",
        )
    return exc
