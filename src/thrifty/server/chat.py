"""The API endpoints apart from any HTTP server: authenticate, parse, call the gateway,
and say what to send back, a whole JSON answer or an event stream. Two fronts write what
these return: aiohttp's (every route) and the llhttp fast path (the API routes, see
``server/fastpath.py``), so both answer the same bytes, headers and errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from thrifty.core.ids import new_request_id
from thrifty.core.request import ChatRequest
from thrifty.engine.calls import Call
from thrifty.engine.gateway import Gateway
from thrifty.engine.streaming import GatewayStream
from thrifty.errors import ThriftyError
from thrifty.server.keys_wiring import Caller, caller_limit_rules
from thrifty.telemetry.access import BodyLog
from thrifty.telemetry.logs import REQUEST_ID
from thrifty.wire.openai_chat import apply_option_headers, parse_chat_request

log = logging.getLogger("thrifty.server")
JSON = "application/json"


@dataclass(slots=True)
class Answer:
    """A whole response: ``headers`` leave out the content type, which is JSON."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class EventStream:
    """A 200 whose body is server-sent events, pumped by :meth:`ChatEndpoint.pump`."""

    headers: dict[str, str]
    stream: GatewayStream
    req: ChatRequest


def error_answer(exc: ThriftyError, request_id: str) -> Answer:
    headers = {"x-thrifty-request-id": request_id, **exc.headers()}
    if exc.provider:
        headers["x-thrifty-provider"] = exc.provider
    return Answer(exc.status, headers, orjson.dumps(exc.to_openai()))


class ChatEndpoint:
    """``POST /v1/chat/completions`` and ``GET /v1/models``."""

    def __init__(self, gateway: Gateway, caller: Caller, bodies: BodyLog | None) -> None:
        self.gw = gateway
        self.caller = caller
        self.bodies = bodies
        self.models_body = orjson.dumps(_models_list(gateway))

    async def chat(self, headers: Mapping[str, str],
                   read: Callable[[], Awaitable[bytes]]) -> Answer | EventStream:
        """``headers`` look names up in lower case; ``read`` returns the whole body."""
        rid = new_request_id()
        started = time.time()
        REQUEST_ID.set(rid)  # every log line of this request carries its id
        req: ChatRequest | None = None
        try:
            key = await self.caller.identify(headers, started)
            req = parse_chat_request(await read(), rid)
            apply_option_headers(req, headers)
            if key is not None:
                from thrifty.keys.cache import authorize_model

                req.key_id, req.team = key.id, key.team
                assert self.caller.cache is not None
                req.key_limits = await caller_limit_rules(key, self.caller.cache)
                authorize_model(key, req.model)
        except ThriftyError as exc:  # refused before routing: the gateway never saw it
            self.gw.record_rejection(req, rid, started, exc)
            return error_answer(exc, rid)
        try:
            if req.stream:
                return await self._stream(req, started)
            # accounted once the response is on its way (next loop turn), not before
            reply = await self.gw.complete(req, started=started, account_later=True)
        except ThriftyError as exc:  # the gateway has already written its ledger row
            return error_answer(exc, rid)
        except Exception:
            log.exception("unexpected error in request %s", rid)
            internal = ThriftyError("The gateway hit an unexpected error; see its log for "
                                    f"request {rid}")
            self.gw.record_rejection(req, rid, started, internal)
            return error_answer(internal, rid)
        o = reply.outcome
        if self.bodies is not None:
            self.bodies.completion(req, reply.body)
        return Answer(200, {
            **_budget_headers(o.budget_warnings),
            "x-thrifty-request-id": rid,
            "x-thrifty-provider": reply.target.provider,
            "x-thrifty-model": reply.target.upstream_model,
            "x-thrifty-cost-usd": reply.cost_usd,
            "x-thrifty-route": o.route or "direct",
            "x-thrifty-calls": str(len(o.calls)),
            "x-thrifty-attempts": attempts_header(o.calls),
        }, reply.body)

    async def _stream(self, req: ChatRequest, started: float) -> EventStream:
        stream = await self.gw.stream(req, started=started)  # raises before the first token
        return EventStream({
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "x-thrifty-request-id": req.request_id,
            "x-thrifty-provider": stream.target.provider,
            "x-thrifty-model": stream.target.upstream_model,
            "x-thrifty-cost-usd": "pending",
            "x-thrifty-route": stream.outcome.route or "direct",
            "x-thrifty-attempts": attempts_header(stream.outcome.calls),
            **_budget_headers(stream.outcome.budget_warnings),
        }, stream, req)

    async def pump(self, es: EventStream, write: Callable[[bytes], Awaitable[None]]) -> bool:
        """Write every event; False when the client left first (``write`` raised
        ConnectionResetError): the upstream is cut and the partial usage recorded, in the
        stream's one ledger row. Cancelled (the client left and the front cancels its
        handler), it does the same and re-raises."""
        events = es.stream.events()
        sent: list[bytes] | None = [] if self.bodies and self.bodies.wants(es.req) else None
        try:
            async for data in events:
                await write(data)
                if sent is not None:
                    sent.append(data)
        except ConnectionResetError:
            await es.stream.aclose()
            return False
        except asyncio.CancelledError:
            await es.stream.aclose()
            raise
        finally:
            await events.aclose()
            if sent is not None and self.bodies is not None:
                self.bodies.stream(es.req, sent)
        return True

    async def models(self, headers: Mapping[str, str]) -> Answer:
        try:
            await self.caller.identify(headers, time.time())
        except ThriftyError as exc:
            return error_answer(exc, new_request_id())
        return Answer(200, {}, self.models_body)


def _budget_headers(warnings: Sequence[str]) -> dict[str, str]:
    """Soft limits crossed: the client hears before the hard limit refuses it."""
    return {"x-thrifty-budget-warning": ",".join(warnings)} if warnings else {}


def attempts_header(calls: Sequence[Call]) -> str:
    """``provider/model=status`` per upstream call, in order: what was tried."""
    return ",".join(f"{c.target.key}={c.status}" for c in calls)


def _models_list(gw: Gateway) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for route in gw.routes.routes():
        owner = route.targets[0].provider if route.kind == "model" else "thrifty"
        data.append({"id": route.name, "object": "model", "created": 0, "owned_by": owner})
    data.sort(key=lambda m: m["id"])
    return {"object": "list", "data": data}
