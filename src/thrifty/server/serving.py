"""Serving the app on a socket: the fast path (``server/fastpath.py``) in front of aiohttp,
and a runner whose graceful shutdown waits for both fronts' requests in flight."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from thrifty.server.chat import ChatEndpoint
from thrifty.server.fastpath import FastPath

FAST_PATH: web.AppKey[tuple[ChatEndpoint, int]] = web.AppKey("fast_path", tuple)
"""Set by ``build_app``: the endpoint and the body limit the fast path serves with."""


class GatewayRunner(web.AppRunner):
    """aiohttp's runner; its shutdown also closes the fast path's idle connections and
    waits, up to the shutdown timeout, for the requests it is answering."""

    def __init__(self, app: web.Application, **kwargs: object) -> None:
        super().__init__(app, **kwargs)  # type: ignore[arg-type]
        self.fast_paths: list[FastPath] = []

    async def shutdown(self) -> None:
        for f in self.fast_paths:
            f.close_idle()
        await super().shutdown()
        await asyncio.gather(*(f.drain(self._shutdown_timeout) for f in self.fast_paths))


class FastSite(web.BaseSite):
    """A listening socket whose connections start on the fast path."""

    __slots__ = ("_fast", "_sock")

    def __init__(self, runner: GatewayRunner, sock: socket.socket) -> None:
        super().__init__(runner)
        self._sock = sock
        self._fast: FastPath | None = None

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        runner = self._runner
        assert isinstance(runner, GatewayRunner) and runner.server is not None
        api, max_body = runner.app[FAST_PATH]
        self._fast = FastPath(api, max_body, runner.server)
        runner.fast_paths.append(self._fast)
        self._server = await asyncio.get_running_loop().create_server(
            self._fast, sock=self._sock, backlog=self._backlog)


async def start_site(app: web.Application, sock: socket.socket, *, fast_path: bool = True,
                     handle_signals: bool = False, shutdown_timeout: float = 10.0,
                     ) -> GatewayRunner:
    """Start ``app`` (its on_startup hooks run here) listening on ``sock``; stop it with
    ``await runner.cleanup()``. ``fast_path=False`` serves every request with aiohttp."""
    runner = GatewayRunner(app, handle_signals=handle_signals, access_log=None,
                           handler_cancellation=True, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site: web.BaseSite = (FastSite(runner, sock) if fast_path
                          else web.SockSite(runner, sock))
    await site.start()
    return runner
