"""Telemetry on the HTTP app: ``GET /metrics`` and the observers behind it (metrics,
access log, traces), as ``telemetry:`` configures them.

``/metrics`` answers with the master key (``Authorization: Bearer <key>``), like the admin
API, when one is configured; without a master key the gateway only listens on loopback and
``/metrics`` is as open as the rest of it. ``metrics.public_on_loopback`` lets a scraper on
the same host in without the key: a direct loopback peer only, never a request that came
through a proxy (one carrying ``X-Forwarded-For`` or ``Forwarded``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import orjson
from aiohttp import web

from thrifty.core.ids import new_request_id
from thrifty.engine.gateway import Gateway
from thrifty.errors import ThriftyError
from thrifty.server.auth import check_master_key, is_loopback
from thrifty.telemetry.metrics import Metrics

log = logging.getLogger("thrifty.server")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


def add_telemetry(app: web.Application, gateway: Gateway, master_key: bytes | None) -> None:
    """Install the configured observers on ``gateway`` and mount ``/metrics``."""
    cfg = gateway.runtime.settings.telemetry
    if cfg.metrics.enabled:
        from prometheus_client import disable_created_metrics

        disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: 2x series
        metrics = Metrics(cfg.metrics)
        gateway.observers.append(metrics)
        app[METRICS] = metrics
        app.router.add_get("/metrics", _MetricsRoute(
            gateway, metrics, master_key, cfg.metrics.public_on_loopback).handle)
        app.cleanup_ctx.append(_flushing(metrics))
    if cfg.logs.access_log:
        from thrifty.telemetry.access import AccessLog

        gateway.observers.append(AccessLog())
    if cfg.tracing.enabled:
        from thrifty.telemetry.tracing import SpanWriter, tracer_provider

        provider = tracer_provider(cfg.tracing)
        vendors = {name: p.vendor.name for name, p in gateway.runtime.providers.items()}
        gateway.observers.append(SpanWriter(provider.get_tracer("thrifty"), vendors))

        async def flush_spans(app: web.Application) -> None:
            await asyncio.to_thread(provider.shutdown)  # exports what is still batched

        app.on_cleanup.append(flush_spans)


FLUSH_EVERY_S = 1.0


def _flushing(metrics: Metrics) -> Callable[[web.Application], AsyncIterator[None]]:
    """With several workers, any of them may answer a scrape: each one flushes its
    accumulators to the shared files every second (so a scrape lags by at most that), and
    once more on shutdown."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        from thrifty.telemetry.multiproc import shared_dir

        if shared_dir() is None:  # one process: the scrape itself flushes
            yield
            return

        async def loop() -> None:
            while True:
                await asyncio.sleep(FLUSH_EVERY_S)
                metrics.flush()

        task = asyncio.get_running_loop().create_task(loop())
        yield
        task.cancel()
        metrics.flush()

    return run


class _MetricsRoute:
    def __init__(self, gw: Gateway, metrics: Metrics, master_key: bytes | None,
                 public_on_loopback: bool) -> None:
        self._gw, self._metrics = gw, metrics
        self._master_key = master_key
        self._public_on_loopback = public_on_loopback

    async def handle(self, request: web.Request) -> web.Response:
        if not (self._public_on_loopback and _direct_loopback(request)):
            try:
                check_master_key(request.headers, self._master_key)
            except ThriftyError as exc:
                return web.Response(body=orjson.dumps(exc.to_openai()), status=exc.status,
                                    content_type="application/json",
                                    headers={"x-thrifty-request-id": new_request_id()})
        from thrifty.telemetry.multiproc import shared_dir
        from thrifty.telemetry.scrape import CONTENT_TYPE, render

        body = await render(self._gw, self._metrics, shared_dir())
        return web.Response(body=body, headers={"content-type": CONTENT_TYPE})


def _direct_loopback(request: web.Request) -> bool:
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        return False
    return is_loopback(request.remote or "")
