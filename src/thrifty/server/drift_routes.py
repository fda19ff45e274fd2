"""The drift admin API, behind the master key like the key admin API:

    GET  /v1/thrifty/drift[?include_cleared=true]   the alerts, newest first
    POST /v1/thrifty/drift/{id}/clear               a person has looked: close the alert,
                                                    lift its demotion, re-learn the baseline

Thin handlers over the gateway's :class:`DriftMonitor`; errors in the OpenAI shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from thrifty.core.ids import new_request_id
from thrifty.drift.monitor import DriftMonitor
from thrifty.errors import InvalidRequest, NotFound, ThriftyError

DRIFT_PATH = "/v1/thrifty/drift"
Guard = Callable[[web.Request], Awaitable[None]]
_Action = Callable[[DriftMonitor, web.Request], web.Response]


def add_drift_routes(app: web.Application, monitor: DriftMonitor | None,
                     guard: Guard) -> None:
    """Mount the drift API on ``app`` (before any catch-all route). With drift detection
    off (``monitor`` None) the routes exist and say so."""

    def route(action: _Action) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            try:
                await guard(request)
                if monitor is None:
                    raise NotFound("drift detection is off on this gateway (drift.enabled: "
                                   "false)", code="drift_disabled")
                return action(monitor, request)
            except ThriftyError as exc:
                return _error(exc)

        return handle

    app.router.add_get(DRIFT_PATH, route(_list))
    app.router.add_post(f"{DRIFT_PATH}/{{alert_id}}/clear", route(_clear))


def _list(monitor: DriftMonitor, request: web.Request) -> web.Response:
    include = request.query.get("include_cleared", "false").lower()
    if include not in ("true", "false"):
        raise InvalidRequest("'include_cleared' must be true or false",
                             param="include_cleared", code="invalid_value")
    alerts = monitor.alerts(include_cleared=include == "true")
    return _json({"object": "list", "data": [a.to_json() for a in alerts],
                  "demoted": sorted(monitor.demoted)})


def _clear(monitor: DriftMonitor, request: web.Request) -> web.Response:
    return _json(monitor.clear(request.match_info["alert_id"]).to_json())


def _json(doc: object) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type="application/json")


def _error(exc: ThriftyError) -> web.Response:
    headers = {"x-thrifty-request-id": new_request_id(), **exc.headers()}
    return web.Response(body=orjson.dumps(exc.to_openai()), status=exc.status,
                        headers=headers, content_type="application/json")
