"""The HTTP surface: OpenAI-compatible routes over the :class:`Gateway`, OpenAI-shaped
errors for everything, and the x-thrifty-* response headers. Handlers stay thin: parse,
call the gateway, write; no policy lives here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

from thrifty.core.ids import new_request_id
from thrifty.core.request import ChatRequest
from thrifty.engine.calls import Call
from thrifty.engine.gateway import Gateway
from thrifty.engine.health_report import deployment_report
from thrifty.errors import NotFound, PayloadTooLarge, ThriftyError
from thrifty.server.drift_routes import add_drift_routes
from thrifty.server.keys_wiring import (
    Caller,
    caller_limit_rules,
    check_key_budgets,
    open_key_store,
)
from thrifty.server.telemetry_routes import add_telemetry
from thrifty.telemetry.access import BodyLog
from thrifty.telemetry.logs import REQUEST_ID
from thrifty.ui.routes import add_ui_routes
from thrifty.wire.openai_chat import apply_option_headers, parse_chat_request
from thrifty.wire.thrifty_api import parse_feedback

log = logging.getLogger("thrifty.server")
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
_JSON = "application/json"


def error_response(exc: ThriftyError, request_id: str) -> web.Response:
    headers = {"x-thrifty-request-id": request_id, **exc.headers()}
    if exc.provider:
        headers["x-thrifty-provider"] = exc.provider
    return web.Response(body=orjson.dumps(exc.to_openai()), status=exc.status,
                        headers=headers, content_type=_JSON)


class Handlers:
    def __init__(self, gateway: Gateway) -> None:
        s = gateway.runtime.settings.server
        self.gw = gateway
        self.max_body = s.max_body_bytes
        self.master_key = s.master_key.get_secret_value().encode() if s.master_key else None
        self.models_body = orjson.dumps(_models_list(gateway))
        self.key_store = open_key_store(gateway.runtime.settings.keys)
        cache = None
        if self.key_store is not None:
            from thrifty.keys.cache import KeyCache

            cache = KeyCache(self.key_store, clock=gateway.clock)
        self.caller = Caller(self.master_key, cache)
        self.bodies = BodyLog.from_config(gateway.runtime.settings.telemetry.logs)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        rid = new_request_id()
        started = time.time()
        REQUEST_ID.set(rid)  # every log line of this request carries its id
        req: ChatRequest | None = None
        try:
            key = await self.caller.identify(request, started)
            req = parse_chat_request(await self._read(request), rid)
            apply_option_headers(req, request.headers)
            if key is not None:
                from thrifty.keys.cache import authorize_model

                req.key_id, req.team = key.id, key.team
                assert self.caller.cache is not None
                req.key_limits = await caller_limit_rules(key, self.caller.cache)
                authorize_model(key, req.model)
        except ThriftyError as exc:  # refused before routing: the gateway never saw it
            self.gw.record_rejection(req, rid, started, exc)
            return error_response(exc, rid)
        try:
            if req.stream:
                return await self._stream(request, req, started)
            # accounted once the response is on its way (next loop turn), not before
            reply = await self.gw.complete(req, started=started, account_later=True)
        except ThriftyError as exc:  # the gateway has already written its ledger row
            return error_response(exc, rid)
        except Exception:
            log.exception("unexpected error in request %s", rid)
            internal = ThriftyError("The gateway hit an unexpected error; see its log for "
                                    f"request {rid}")
            self.gw.record_rejection(req, rid, started, internal)
            return error_response(internal, rid)
        o = reply.outcome
        if self.bodies is not None:
            self.bodies.completion(req, reply.body)
        headers = _budget_headers(o.budget_warnings)
        return web.Response(body=reply.body, content_type=_JSON, headers={
            **headers,
            "x-thrifty-request-id": rid,
            "x-thrifty-provider": reply.target.provider,
            "x-thrifty-model": reply.target.upstream_model,
            "x-thrifty-cost-usd": reply.cost_usd,
            "x-thrifty-route": o.route or "direct",
            "x-thrifty-calls": str(len(o.calls)),
            "x-thrifty-attempts": attempts_header(o.calls),
        })

    async def _read(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_body:
            raise PayloadTooLarge(
                f"The request body is {length} bytes; this gateway accepts at most "
                f"{self.max_body}", code="request_too_large")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(
                f"The request body is over this gateway's limit of {self.max_body} bytes",
            ) from None

    async def _stream(
        self, request: web.Request, req: ChatRequest, started: float
    ) -> web.StreamResponse:
        stream = await self.gw.stream(req, started=started)  # raises before the first token
        resp = _SSEResponse(status=200, headers={
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "x-thrifty-request-id": req.request_id,
            "x-thrifty-provider": stream.target.provider,
            "x-thrifty-model": stream.target.upstream_model,
            "x-thrifty-cost-usd": "pending",
            "x-thrifty-route": stream.outcome.route or "direct",
            "x-thrifty-attempts": attempts_header(stream.outcome.calls),
            **_budget_headers(stream.outcome.budget_warnings),
        })
        events = stream.events()
        sent: list[bytes] | None = [] if self.bodies and self.bodies.wants(req) else None
        try:
            await resp.prepare(request)
            async for data in events:
                await resp.write(data)
                if sent is not None:
                    sent.append(data)
            await resp.write_eof()
        except ConnectionResetError:
            # Client gone: cut the upstream now and record partial usage (its one row). The
            # prepared response goes back to aiohttp, which drops the connection quietly;
            # raising would reach chat()'s catch-all and count the request again as a 500.
            await stream.aclose()
            return resp
        except asyncio.CancelledError:
            await stream.aclose()
            raise
        finally:
            await events.aclose()
            if sent is not None and self.bodies is not None:
                self.bodies.stream(req, sent)
        return resp

    async def feedback(self, request: web.Request) -> web.Response:
        """``{"request_id": "thr-...", "score": 0.0-1.0}``: a client's verdict on an answer."""
        rid = new_request_id()
        try:
            await self.caller.identify(request, time.time())
            request_id, score = parse_feedback(await self._read(request))
            result = await self.gw.feedback(request_id, score)
        except ThriftyError as exc:
            return error_response(exc, rid)
        return web.Response(body=orjson.dumps(result), content_type=_JSON)

    async def models(self, request: web.Request) -> web.Response:
        try:
            await self.caller.identify(request, time.time())
        except ThriftyError as exc:
            return error_response(exc, new_request_id())
        return web.Response(body=self.models_body, content_type=_JSON)

    async def health(self, request: web.Request) -> web.Response:
        """Every deployment's breaker state, error rate, latency and rate-limit headroom."""
        try:
            await self.caller.identify(request, time.time())
        except ThriftyError as exc:
            return error_response(exc, new_request_id())
        report = await deployment_report(self.gw)
        return web.Response(body=orjson.dumps(report), content_type=_JSON)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=_JSON)

    async def readyz(self, request: web.Request) -> web.Response:
        n = len(self.gw.routes)
        ping = getattr(self.gw.resilience.health, "ping", None)
        shared = await ping() if ping is not None else True
        ready = bool(n) and shared
        reason = ("ready" if ready else "no models configured" if not n
                  else "the shared health store (Redis) is unreachable")
        status = 200 if ready else 503
        body = {"status": reason, "models": n}
        return web.Response(body=orjson.dumps(body), status=status, content_type=_JSON)


class _SSEResponse(web.StreamResponse):
    """A stream whose headers leave with its first chunk, which is already in hand when it
    is prepared: one write and one packet instead of two before the first token. (aiohttp
    sends a stream's headers at once unless told otherwise; without the attribute, it
    still works, one write later.)"""

    _send_headers_immediately = False


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


async def _not_found(request: web.Request) -> web.Response:
    exc = NotFound(f"Unknown path {request.method} {request.path}")
    return error_response(exc, new_request_id())


def build_app(gateway: Gateway) -> web.Application:
    h = Handlers(gateway)
    # aiohttp's own body limit stays above ours so that ours answers in the OpenAI shape.
    app = web.Application(client_max_size=h.max_body + 1)
    app[GATEWAY] = gateway
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", h.chat)
        app.router.add_get(f"{prefix}/models", h.models)
    app.router.add_post("/v1/thrifty/feedback", h.feedback)
    app.router.add_get("/v1/thrifty/health", h.health)
    app.router.add_get("/healthz", h.healthz)
    app.router.add_get("/readyz", h.readyz)
    add_telemetry(app, gateway, h.master_key)  # /metrics and the observers
    if h.key_store is not None:  # the key admin API, behind the master key
        from thrifty.server.admin import add_admin_routes

        add_admin_routes(app, h.key_store, h.caller.operator, cache=h.caller.cache,
                         clock=gateway.clock, check_budgets=check_key_budgets)
    add_drift_routes(app, gateway.drift, h.caller.operator)  # behind the master key
    add_ui_routes(app, gateway, h.master_key, h.key_store)  # the dashboard under /ui
    app.router.add_route("*", "/{tail:.*}", _not_found)

    async def on_startup(app: web.Application) -> None:
        await gateway.start()

    async def on_cleanup(app: web.Application) -> None:
        await gateway.close()
        if h.key_store is not None:
            await h.key_store.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
