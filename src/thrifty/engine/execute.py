"""One attempt on one target: build the upstream request with the target's adapter, send it
through the shared transport, and decode the answer. Streams are opened eagerly up to their
first decoded chunk, so every failure before the first token surfaces here, where the
gateway can still fail over or answer with a proper HTTP status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from thrifty.core.request import ChatRequest
from thrifty.core.response import Completion, StreamDecoder
from thrifty.errors import UpstreamBadResponse
from thrifty.providers.base import Target
from thrifty.providers.registry import adapter_for
from thrifty.providers.sse import SSEParser
from thrifty.providers.transport import Deadlines, Transport, UpstreamStream


class OpenStream:
    """An upstream stream, decoded into batches of OpenAI chunks."""

    def __init__(self, upstream: UpstreamStream, decoder: StreamDecoder, provider: str) -> None:
        self.decoder = decoder
        self.headers = upstream.headers
        self._upstream = upstream
        self._provider = provider
        self._raw = upstream.chunks()
        self._parser = SSEParser()
        self._first: list[dict[str, Any]] | None = None
        self._gen = self._decode()

    async def prime(self) -> None:
        """Read until the first non-empty batch, so early failures raise now."""
        async for batch in self._gen:
            if batch:
                self._first = batch
                return

    async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        if self._first:
            first, self._first = self._first, None
            yield first
        async for batch in self._gen:
            if batch:
                yield batch

    async def _decode(self) -> AsyncIterator[list[dict[str, Any]]]:
        decoder = self.decoder
        async for raw in self._raw:
            out: list[dict[str, Any]] = []
            for ev in self._parser.feed(raw):
                out.extend(decoder.feed(ev.event, ev.data))
            if decoder.done:  # the body's framing may still be on its way: let it end
                self._upstream.release()
                yield out
                return
            yield out
        out = []
        for ev in self._parser.flush():
            out.extend(decoder.feed(ev.event, ev.data))
        if out:
            yield out
        if not decoder.done:
            raise UpstreamBadResponse(
                f"provider {self._provider} ended the stream before it was complete",
                provider=self._provider,
            )

    def close(self) -> None:
        self._upstream.close()


class Executor:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def complete(self, req: ChatRequest, target: Target, deadlines: Deadlines) -> Completion:
        adapter = adapter_for(target.wire)
        up = adapter.build_request(req, target, stream=False)
        raw = await self.transport.send(up, deadlines, target.provider)
        if raw.status >= 400:
            raise adapter.classify_error(raw.status, raw.headers, raw.body, target)
        completion = adapter.parse_response(raw.body, req, target)
        completion.headers = raw.headers
        return completion

    async def open_stream(
        self, req: ChatRequest, target: Target, deadlines: Deadlines
    ) -> OpenStream:
        adapter = adapter_for(target.wire)
        up = adapter.build_request(req, target, stream=True)
        upstream = await self.transport.open(up, deadlines, target.provider)
        if upstream.status >= 400:
            body = await upstream.read_all()
            raise adapter.classify_error(upstream.status, upstream.headers, body, target)
        stream = OpenStream(upstream, adapter.stream_decoder(req, target), target.provider)
        try:
            await stream.prime()
        except BaseException:
            stream.close()
            raise
        return stream
