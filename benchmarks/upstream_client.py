#!/usr/bin/env python3
"""CPU per upstream call of thrifty's HTTP/1.1 client (``thrifty.providers.http1``) against
aiohttp's ClientSession configured as thrifty used it before, and httpx.AsyncClient when it
is installed: POST /v1/chat/completions (the harness body, model mock-0ms) to the shared
harness's fast mock upstream, each response read whole; and with ``--stream`` (on by
default) streams of 20 chunks 1 ms apart (mock-0ms-itl1) read chunk by chunk.

    python benchmarks/upstream_client.py [--calls N] [--rounds R] [--concurrency 1,64]
    python benchmarks/upstream_client.py --no-stream      # calls only; --streams N sets the count

Each client runs in a child process pinned to the gateway CPU (uvloop when importable), the
mock on the load CPU; the child counts its own process CPU (time.process_time) over the
measured calls, after a warm-up. Clients are interleaved and the whole is repeated
``--rounds`` times; each round is printed, then the medians as ratios to aiohttp's CPU per
call. c=1 shows the cost of one call; at c=64 a fast client finds more sockets ready per
event-loop wake-up than a slow one, which flatters it. Loopback only; every process is
stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench_procs import Proc, cpus, free_port, machine_facts, start_mock

URL_PATH = "/v1/chat/completions"
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
CLIENTS = ("aiohttp", "thrifty", "httpx")


def body(stream: bool) -> bytes:
    b: dict[str, object] = {
        "model": "mock-0ms-itl1" if stream else "mock-0ms", "max_tokens": 128,
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Write one sentence about load balancers."}]}
    if stream:
        b |= {"stream": True, "stream_options": {"include_usage": True}}
    return json.dumps(b).encode()


Call = Callable[[], Awaitable[int]]


async def make_client(name: str, url: str, payload: bytes, stream: bool
                      ) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """One call (returns the bytes it read) and the client's close."""
    if name == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60,
                                           ttl_dns_cache=300),
            auto_decompress=True, skip_auto_headers=("User-Agent",))
        timeout = aiohttp.ClientTimeout(total=600, sock_connect=10, sock_read=120)

        async def aiohttp_call() -> int:
            resp = await session.post(url, data=payload, headers=HEADERS, timeout=timeout)
            try:
                assert resp.status == 200, resp.status
                if not stream:
                    return len(await resp.read())
                return sum([len(c) async for c in resp.content.iter_any()])
            finally:
                resp.release()

        return aiohttp_call, session.close
    if name == "thrifty":
        from thrifty.providers.http1 import ConnectionPool

        pool = ConnectionPool(keepalive_s=60)

        async def thrifty_call() -> int:
            resp = await pool.request("POST", url, HEADERS, payload, connect_s=10,
                                      first_byte_s=120, total_s=600)
            assert resp.status == 200, resp.status
            if not stream:
                return len(await resp.read())
            return sum([len(c) async for c in resp.chunks()])

        return thrifty_call, pool.close
    import httpx  # type: ignore[import-not-found, unused-ignore]

    client = httpx.AsyncClient(
        timeout=httpx.Timeout(600, connect=10, read=120),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None,
                            keepalive_expiry=60))

    async def httpx_call() -> int:
        if not stream:
            resp = await client.post(url, content=payload, headers=HEADERS)
            assert resp.status_code == 200, resp.status_code
            return len(resp.content)
        async with client.stream("POST", url, content=payload, headers=HEADERS) as resp:
            assert resp.status_code == 200, resp.status_code
            return sum([len(c) async for c in resp.aiter_bytes()])

    return httpx_call, client.aclose


async def child(name: str, port: int, n: int, conc: int, stream: bool) -> dict[str, float]:
    call, close = await make_client(name, f"http://127.0.0.1:{port}{URL_PATH}", body(stream),
                                    stream)

    async def run(total: int) -> int:
        left, got = [total], [0]

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                size = await call()  # not `got[0] += await ...`: that reads got[0] first
                got[0] += size

        await asyncio.gather(*(worker() for _ in range(min(conc, total))))
        return got[0]

    try:
        await run(max(conc * 4, min(n // 10, 500)))  # connections opened, caches warm
        t0, c0 = time.perf_counter(), time.process_time()
        got = await run(n)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    finally:
        await close()
    if got < n * 100:
        raise RuntimeError(f"{name}: only {got} bytes in {n} responses")
    return {"cpu_us": cpu / n * 1e6, "rate": n / wall}


def run_child(name: str, port: int, n: int, conc: int, stream: bool,
              gw_cpus: set[int] | None, timeout_s: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(prefix="thrifty-upc-", suffix=".log") as log:
        proc = Proc(name, [sys.executable, __file__, "--child", name, "--port", str(port),
                           "--calls", str(n), "--concurrency", str(conc),
                           "--stream" if stream else "--no-stream"],
                    cpus=gw_cpus, log=Path(log.name))
        try:
            proc.p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{name} c={conc}: no result in {timeout_s:.0f} s") from None
        finally:
            proc.stop()
        out = Path(log.name).read_text()
    last = out.strip().splitlines()[-1] if out.strip() else ""
    if proc.p.returncode != 0 or not last.startswith("{"):
        raise RuntimeError(f"{name} c={conc} failed (exit {proc.p.returncode}):\n{out}")
    result: dict[str, float] = json.loads(last)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--streams", type=int, default=1_000, help="streams per client and case")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="1,64")
    ap.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per child, at most")
    ap.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        coro = child(a.child, a.port, a.calls, int(a.concurrency), a.stream)
        try:
            import uvloop
            res = uvloop.run(coro)
        except ImportError:
            res = asyncio.run(coro)
        print(json.dumps({**res, "uvloop": "uvloop" in sys.modules}), flush=True)
        return 0

    for k, v in machine_facts().items():
        print(f"{k:8}: {v}")
    clients = ["aiohttp", "thrifty"]
    try:
        import httpx  # noqa: F401
        clients.append("httpx")
    except ImportError:
        print("httpx   : not importable in this venv; skipped")
    concs = [int(c) for c in a.concurrency.split(",")]
    gw_cpus, lg_cpus = cpus()
    if lg_cpus:
        os.sched_setaffinity(0, lg_cpus)  # this script waits on the load CPU, off the clients'
    print(f"clients on CPUs {gw_cpus}, mock on {lg_cpus}; {a.calls:,} calls"
          f"{f', {a.streams:,} streams' if a.stream else ''} per client and case", flush=True)
    cases = [(c, False) for c in concs] + ([(c, True) for c in concs] if a.stream else [])
    results: dict[tuple[int, bool, str], list[dict[str, float]]] = {}
    port = free_port()
    mock = start_mock(port, lg_cpus)
    try:
        for rnd in range(1, a.rounds + 1):
            for conc, stream in cases:
                n = a.streams if stream else a.calls
                for name in clients:  # interleaved: drift on the machine hits all alike
                    r = run_child(name, port, n, conc, stream, gw_cpus, a.timeout)
                    results.setdefault((conc, stream, name), []).append(r)
                    print(f"round {rnd}  c={conc:<3} {'stream' if stream else 'call':6} "
                          f"{name:8} {r['cpu_us']:8.1f} us CPU per "
                          f"{'stream' if stream else 'call'}  {r['rate']:9,.0f}/s"
                          f"{'' if r.get('uvloop') else '  (asyncio loop)'}", flush=True)
    finally:
        mock.stop()
    print(f"\nmedians of {a.rounds} round(s); ratio = CPU per call / aiohttp's:")
    for conc, stream in cases:
        base = statistics.median(r["cpu_us"] for r in results[(conc, stream, "aiohttp")])
        for name in clients:
            rs = results[(conc, stream, name)]
            cpu = statistics.median(r["cpu_us"] for r in rs)
            rate = statistics.median(r["rate"] for r in rs)
            print(f"  c={conc:<3} {'stream' if stream else 'call':6} {name:8} {cpu:8.1f} us "
                  f"{rate:9,.0f}/s  {cpu / base:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
