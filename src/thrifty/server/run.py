"""Running the server: one process, or N pre-forked workers on one port, a listening socket
each on Linux (the parent only supervises and forwards SIGTERM/SIGINT)."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable

from aiohttp import web

from thrifty.engine.gateway import Gateway


def bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True,
         ) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(4096)
    sock.set_inheritable(True)
    return sock


BALANCED = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
"""Workers get a listening socket each (SO_REUSEPORT): the kernel spreads connections
across them. Sharing one socket, the worker that wakes first accepts every connection
waiting: measured under wrk c=64 (benchmarks/RESULTS.md, issue 6), 51 of the 64 keep-alive
connections went to one of two workers, which ran out of CPU while the other idled. Elsewhere
(macOS, BSD: SO_REUSEPORT does not balance there) the workers share one socket."""


GC_YOUNG_THRESHOLD = 10_000
"""Net new container objects between two young collections (CPython's default is 700)."""


def settle_heap() -> None:
    """Once a worker has started: freeze what start-up built (modules, config, routes) out of
    the collector's sight, and collect the young generation after 10,000 net allocations
    instead of 700. Measured through the gateway (benchmarks/RESULTS.md, issue 6): the
    default thresholds spent ~85 us of collection per proxied request re-scanning ~70,000
    start-up objects and the requests in flight; this spends ~5 us. Memory stays bounded:
    only cyclic garbage waits longer, and a request makes little of it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def _settle_heap_on_startup(app: web.Application) -> None:
    settle_heap()


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve_until_signalled(sock: socket.socket, make_gateway: Callable[[], Gateway],
                                 ) -> None:
    from thrifty.server.app import build_app
    from thrifty.server.serving import start_site

    gateway = make_gateway()
    app = build_app(gateway)
    app.on_startup.append(_settle_heap_on_startup)  # last: after the gateway has started
    runner = await start_site(app, sock, handle_signals=True,
                              fast_path=gateway.runtime.settings.server.fast_path)
    try:
        await asyncio.Event().wait()  # until SIGTERM/SIGINT raise GracefulExit
    finally:
        await runner.cleanup()


def _worker(shared: socket.socket, make_gateway: Callable[[], Gateway]) -> None:
    if BALANCED:
        host, port = shared.getsockname()[:2]
        own = bind(host, port, reuse_port=True)
        shared.close()
        shared = own
    run_worker(shared, make_gateway)


def run_worker(sock: socket.socket, make_gateway: Callable[[], Gateway]) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully (as ``web.run_app`` does:
    requests in flight get up to 10 s, then every task left is cancelled)."""
    _use_uvloop()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve_until_signalled(sock, make_gateway))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        # The runner's cleanup (inside main) first, while the ledger writer and the other
        # background tasks still run to flush; only then the rest. (asyncio.Runner cancels
        # every task at once, and the ledger's last rows were lost.)
        main.cancel()
        loop.run_until_complete(asyncio.gather(main, return_exceptions=True))
        left = asyncio.all_tasks(loop)
        for t in left:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def serve(host: str, port: int, workers: int, make_gateway: Callable[[], Gateway],
          on_worker_exit: Callable[[int], None] | None = None) -> int:
    """``on_worker_exit(pid)``: told as each worker is reaped (metrics mark it dead)."""
    if workers <= 1:
        run_worker(bind(host, port), make_gateway)
        return 0
    # Bound here, so a port in use fails before any fork and port 0 picks one port for all;
    # with BALANCED it never listens (a socket that does not listen gets no connections)
    # and each worker binds and listens its own.
    sock = bind(host, port, reuse_port=BALANCED, listen=not BALANCED)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(sock, make_gateway), daemon=False)
             for _ in range(workers)]
    for p in procs:
        p.start()

    def forward(signum: int, frame: object) -> None:
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
        if on_worker_exit is not None and p.pid is not None:
            on_worker_exit(p.pid)
    sys.stdout.flush()
    return max((p.exitcode or 0) for p in procs)
