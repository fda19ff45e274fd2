"""The gateway: the request flow top to bottom, free of any web framework.

    resolve route -> for each target: execute (attempt) -> account -> ledger

``complete`` answers a non-streaming request; ``stream`` opens a streaming one and returns
a :class:`GatewayStream` whose ``events()`` yields ready-to-send SSE bytes. Before the first
token a failing target is replaced by the route's next one, invisibly; after it, the stream
ends with an OpenAI-style error event. Every request, whatever happens, becomes exactly one
ledger row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from thrifty.config.load import load_settings
from thrifty.config.resolve import Runtime, resolve
from thrifty.core.clock import Clock, SystemClock
from thrifty.core.request import ChatRequest
from thrifty.engine.account import Outcome, cost_extension, estimate_usage, ledger_entry
from thrifty.engine.execute import Executor, OpenStream
from thrifty.errors import ThriftyError
from thrifty.ledger.writer import LedgerWriter
from thrifty.providers.base import Target
from thrifty.providers.transport import Deadlines, Transport

log = logging.getLogger("thrifty.gateway")
_DONE = b"data: [DONE]\n\n"
CLIENT_CLOSED = 499
T = TypeVar("T")


class Gateway:
    def __init__(
        self,
        runtime: Runtime,
        *,
        ledger: LedgerWriter | None = None,
        transport: Transport | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.runtime = runtime
        self.routes = runtime.routes
        self.ledger = ledger
        self.transport = transport or Transport()
        self.executor = Executor(self.transport)
        self.clock: Clock = clock or SystemClock()
        s = runtime.settings.server
        self.deadlines = Deadlines(s.connect_timeout_s, s.first_token_timeout_s,
                                   s.request_timeout_s)

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> Gateway:
        """A gateway from a config file (or the environment), with its SQLite ledger."""
        settings = load_settings(path, overrides=overrides)
        runtime = resolve(settings, base_dir=Path(path).parent if path else None)
        return cls(runtime, ledger=open_ledger(runtime))

    async def start(self) -> None:
        if self.ledger is not None:
            await self.ledger.start()

    async def close(self) -> None:
        await self.transport.close()
        if self.ledger is not None:
            await self.ledger.close()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- library use -----------------------------------------------------------------------

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI chat-completions body in, the response body out (with its ``thrifty``
        cost object), validated exactly as the server validates it. Errors raise the
        :mod:`thrifty.errors` tree.

            async with Gateway.from_config("thrifty.yaml") as gw:
                reply = await gw.chat({"model": "gpt-4o-mini", "messages": [...]})
        """
        req = self._parse(body, stream=False)
        reply = await self.complete(req)
        result: dict[str, Any] = orjson.loads(reply.body)
        return result

    async def chat_stream(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Stream a chat completion as OpenAI chunk dicts (the final one carries usage and
        the ``thrifty`` cost object)."""
        req = self._parse({**body, "stream": True,
                           "stream_options": {"include_usage": True}}, stream=True)
        stream = await self.stream(req)
        events = stream.events()
        try:
            async for data in events:
                for line in data.split(b"\n\n"):
                    if line.startswith(b"data: {"):
                        yield orjson.loads(line[6:])
        finally:
            await events.aclose()

    def _parse(self, body: dict[str, Any], *, stream: bool) -> ChatRequest:
        from thrifty.core.ids import new_request_id
        from thrifty.errors import InvalidRequest
        from thrifty.wire.openai_chat import parse_chat_request

        rid = new_request_id()
        try:
            if bool(body.get("stream")) != stream:
                raise InvalidRequest("use chat_stream() for stream=true and chat() otherwise",
                                     param="stream")
            return parse_chat_request(orjson.dumps(body), rid)
        except InvalidRequest as exc:
            self.record_rejection(None, rid, self.clock.now(), exc)
            raise

    # -- non-streaming ---------------------------------------------------------------------

    async def complete(self, req: ChatRequest, *, started: float | None = None) -> GatewayReply:
        outcome = Outcome(req, self.clock.now() if started is None else started, status=200)
        t0 = self.clock.monotonic()
        deadlines = self._deadlines(req)
        completion = await self._first_success(
            outcome, t0, lambda t: self.executor.complete(req, t, deadlines)
        )
        outcome.usage = completion.usage
        if outcome.usage is None:  # the vendor sent no usage: estimate, never $0
            outcome.usage = estimate_usage(req, _completion_chars(completion.body))
            outcome.usage_estimated = True
        outcome.latency_ms = (self.clock.monotonic() - t0) * 1000
        outcome.ttft_ms = outcome.latency_ms
        body = completion.body
        body["thrifty"] = cost_extension(outcome)
        self._record(outcome)
        return GatewayReply(outcome, orjson.dumps(body))

    # -- streaming -------------------------------------------------------------------------

    async def stream(self, req: ChatRequest, *, started: float | None = None) -> GatewayStream:
        outcome = Outcome(req, self.clock.now() if started is None else started, status=200)
        t0 = self.clock.monotonic()
        deadlines = self._deadlines(req)
        opened = await self._first_success(
            outcome, t0, lambda t: self.executor.open_stream(req, t, deadlines)
        )
        outcome.ttft_ms = (self.clock.monotonic() - t0) * 1000
        return GatewayStream(self, outcome, opened, t0)

    # -- shared ----------------------------------------------------------------------------

    async def _first_success(
        self, outcome: Outcome, t0: float, attempt: Callable[[Target], Awaitable[T]]
    ) -> T:
        """Try the route's targets in order; a retryable upstream failure moves on to the
        next one (full retry and breaker policy belongs to the resilience layer)."""
        try:
            route = self.routes.resolve(outcome.req.model)
            outcome.route = route.label
            last = len(route.targets) - 1
            for i, target in enumerate(route.targets):
                outcome.target = target
                try:
                    return await attempt(target)
                except ThriftyError as exc:
                    if i == last or not (exc.retryable and exc.provider is not None):
                        raise
                    log.info("falling back from %s: %s", target.provider, exc.code)
            raise AssertionError("a route always has a target")
        except ThriftyError as exc:
            self._fail(outcome, t0, exc.status, exc.code)
            raise
        except asyncio.CancelledError:  # the client went away mid-request
            self._fail(outcome, t0, CLIENT_CLOSED, "client_closed")
            raise

    def _fail(self, outcome: Outcome, t0: float, status: int, code: str | None) -> None:
        outcome.status = status
        outcome.error_code = code
        outcome.latency_ms = (self.clock.monotonic() - t0) * 1000
        self._record(outcome)

    def record_rejection(self, req: ChatRequest | None, request_id: str, started: float,
                         exc: ThriftyError) -> None:
        """A request refused before routing (auth, malformed body) still gets its row."""
        if req is None:
            req = ChatRequest(body={}, model="", stream=False, include_usage=False,
                              request_id=request_id)
        self._record(Outcome(req, started, status=exc.status, error_code=exc.code))

    def _deadlines(self, req: ChatRequest) -> Deadlines:
        total = req.options.timeout_s
        if total is None:
            return self.deadlines
        d = self.deadlines
        return Deadlines(min(d.connect_s, total), min(d.first_byte_s, total), total)

    def _record(self, outcome: Outcome) -> None:
        if self.ledger is not None:
            self.ledger.submit(ledger_entry(outcome))


class GatewayReply:
    __slots__ = ("body", "outcome")

    def __init__(self, outcome: Outcome, body: bytes) -> None:
        self.outcome = outcome
        self.body = body

    @property
    def target(self) -> Target:
        assert self.outcome.target is not None
        return self.outcome.target


class GatewayStream:
    """A stream already past its first token. Iterate ``events()`` to the end or call
    ``aclose()``: either way the request is accounted exactly once."""

    def __init__(self, gw: Gateway, outcome: Outcome, opened: OpenStream, t0: float) -> None:
        self.outcome = outcome
        self._gw = gw
        self._opened = opened
        self._t0 = t0
        self._chars = 0
        self._finished = False

    @property
    def target(self) -> Target:
        assert self.outcome.target is not None
        return self.outcome.target

    async def events(self) -> AsyncGenerator[bytes, None]:
        req = self.outcome.req
        usage_chunk: dict[str, Any] | None = None
        try:
            async for batch in self._opened.batches():
                out = []
                for chunk in batch:
                    if not chunk.get("choices") and "usage" in chunk:
                        usage_chunk = chunk  # held back: it is sent last, with the cost
                        continue
                    self._chars += _chunk_chars(chunk)
                    out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
                if out:
                    yield b"".join(out)
        except ThriftyError as exc:
            self._settle(exc.status, exc.code)
            yield b"data: " + orjson.dumps(exc.to_openai()) + b"\n\n" + _DONE
            return
        except BaseException:
            self._settle(CLIENT_CLOSED, "client_closed")
            raise
        self._settle(200, None)
        if req.include_usage:
            chunk = usage_chunk or self._synth_usage_chunk()
            chunk["thrifty"] = cost_extension(self.outcome)
            yield b"data: " + orjson.dumps(chunk) + b"\n\n" + _DONE
        else:
            yield _DONE

    async def aclose(self) -> None:
        """The client went away: stop paying for tokens no one reads, and account."""
        self._settle(CLIENT_CLOSED, "client_closed")

    def _settle(self, status: int, code: str | None) -> None:
        if self._finished:
            return
        self._finished = True
        self._opened.close()
        o = self.outcome
        o.status = status
        o.error_code = code
        o.latency_ms = (self._gw.clock.monotonic() - self._t0) * 1000
        o.usage = self._opened.decoder.usage
        if o.usage is None:
            o.usage = estimate_usage(o.req, self._chars)
            o.usage_estimated = True
        self._gw._record(o)

    def _synth_usage_chunk(self) -> dict[str, Any]:
        u = self.outcome.usage
        assert u is not None
        return {
            "id": f"chatcmpl-{self.outcome.req.request_id}",
            "object": "chat.completion.chunk",
            "created": int(self.outcome.started),
            "model": self.target.upstream_model,
            "choices": [],
            "usage": u.to_openai(),
        }


def _chunk_chars(chunk: dict[str, Any]) -> int:
    n = 0
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str):
                n += len(content)
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    n += len(fn["arguments"])
    return n


def _completion_chars(body: dict[str, Any]) -> int:
    n = 0
    for choice in body.get("choices") or ():
        msg = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(msg, dict):
            if isinstance(msg.get("content"), str):
                n += len(msg["content"])
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    n += len(fn["arguments"])
    return n


def open_ledger(runtime: Runtime) -> LedgerWriter | None:
    cfg = runtime.settings.ledger
    if cfg.backend == "none":
        return None
    from thrifty.ledger.sqlite import SQLiteLedger

    return LedgerWriter(SQLiteLedger(cfg.path))
