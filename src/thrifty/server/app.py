"""The HTTP surface: OpenAI-compatible routes over the :class:`Gateway`, OpenAI-shaped
errors for everything, and the x-thrifty-* response headers. Handlers stay thin: parse,
call the gateway, write; no policy lives here."""

from __future__ import annotations

import logging
import time

import orjson
from aiohttp import web

from thrifty.core.ids import new_request_id
from thrifty.engine.gateway import Gateway
from thrifty.engine.health_report import deployment_report
from thrifty.errors import NotFound, PayloadTooLarge, ThriftyError
from thrifty.server.chat import JSON, Answer, ChatEndpoint, error_answer
from thrifty.server.drift_routes import add_drift_routes
from thrifty.server.keys_wiring import Caller, check_key_budgets, open_key_store
from thrifty.server.serving import FAST_PATH
from thrifty.server.telemetry_routes import add_telemetry
from thrifty.telemetry.access import BodyLog
from thrifty.ui.routes import add_ui_routes
from thrifty.wire.thrifty_api import parse_feedback

log = logging.getLogger("thrifty.server")
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)


def error_response(exc: ThriftyError, request_id: str) -> web.Response:
    return _response(error_answer(exc, request_id))


def _response(a: Answer) -> web.Response:
    return web.Response(body=a.body, status=a.status, headers=a.headers, content_type=JSON)


class Handlers:
    def __init__(self, gateway: Gateway) -> None:
        s = gateway.runtime.settings.server
        self.gw = gateway
        self.max_body = s.max_body_bytes
        self.master_key = s.master_key.get_secret_value().encode() if s.master_key else None
        self.key_store = open_key_store(gateway.runtime.settings.keys)
        cache = None
        if self.key_store is not None:
            from thrifty.keys.cache import KeyCache

            cache = KeyCache(self.key_store, clock=gateway.clock)
        self.caller = Caller(self.master_key, cache)
        self.api = ChatEndpoint(gateway, self.caller,
                                BodyLog.from_config(gateway.runtime.settings.telemetry.logs))

    async def chat(self, request: web.Request) -> web.StreamResponse:
        answer = await self.api.chat(request.headers, lambda: self._read(request))
        if isinstance(answer, Answer):
            return _response(answer)
        resp = _SSEResponse(status=200, headers=answer.headers)

        async def write(data: bytes) -> None:
            if not resp.prepared:  # inside the pump, which answers a reset here too
                await resp.prepare(request)
            await resp.write(data)

        try:
            if await self.api.pump(answer, write):
                if not resp.prepared:  # a stream without a single event
                    await resp.prepare(request)
                await resp.write_eof()
        except ConnectionResetError:
            # Client gone: the prepared response goes back to aiohttp, which drops the
            # connection quietly; raising would count the request again as a 500.
            pass
        return resp

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

    async def feedback(self, request: web.Request) -> web.Response:
        """``{"request_id": "thr-...", "score": 0.0-1.0}``: a client's verdict on an answer."""
        rid = new_request_id()
        try:
            await self.caller.identify(request.headers, time.time())
            request_id, score = parse_feedback(await self._read(request))
            result = await self.gw.feedback(request_id, score)
        except ThriftyError as exc:
            return error_response(exc, rid)
        return web.Response(body=orjson.dumps(result), content_type=JSON)

    async def models(self, request: web.Request) -> web.Response:
        return _response(await self.api.models(request.headers))

    async def health(self, request: web.Request) -> web.Response:
        """Every deployment's breaker state, error rate, latency and rate-limit headroom."""
        try:
            await self.caller.identify(request.headers, time.time())
        except ThriftyError as exc:
            return error_response(exc, new_request_id())
        report = await deployment_report(self.gw)
        return web.Response(body=orjson.dumps(report), content_type=JSON)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=JSON)

    async def readyz(self, request: web.Request) -> web.Response:
        n = len(self.gw.routes)
        ping = getattr(self.gw.resilience.health, "ping", None)
        shared = await ping() if ping is not None else True
        ready = bool(n) and shared
        reason = ("ready" if ready else "no models configured" if not n
                  else "the shared health store (Redis) is unreachable")
        status = 200 if ready else 503
        body = {"status": reason, "models": n}
        return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


class _SSEResponse(web.StreamResponse):
    """A stream whose headers leave with its first chunk, which is already in hand when it
    is prepared: one write and one packet instead of two before the first token. (aiohttp
    sends a stream's headers at once unless told otherwise; without the attribute, it
    still works, one write later.)"""

    _send_headers_immediately = False


async def _not_found(request: web.Request) -> web.Response:
    exc = NotFound(f"Unknown path {request.method} {request.path}")
    return error_response(exc, new_request_id())


def build_app(gateway: Gateway) -> web.Application:
    h = Handlers(gateway)
    # aiohttp's own body limit stays above ours so that ours answers in the OpenAI shape.
    app = web.Application(client_max_size=h.max_body + 1)
    app[GATEWAY] = gateway
    app[FAST_PATH] = (h.api, h.max_body)
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
