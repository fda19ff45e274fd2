#!/usr/bin/env python3
"""Gateway overhead on loopback: thrifty vs. going straight to the fake provider.

Starts `thrifty fake-provider` (OpenAI wire, no latency) and `thrifty serve` in front of it
(ledger on, pricing on), then drives both with the same closed-loop load from a separate
process, for JSON and streaming requests, at concurrency 1 and 64. Prints absolute figures
and, for each, the ratio against the direct path measured in the same run:

  requests/s, p50 / p99 latency and the latency thrifty adds, gateway CPU per request
  (from /proc, the steadiest figure), gateway RSS idle and peak.

    python benchmarks/overhead.py [--seconds 5] [--concurrency 1,64] [--workers 1]

Loopback only; every process is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

BODY = orjson.dumps({"model": "bench-model",
                     "messages": [{"role": "user", "content": "echo: hello world"}]})
STREAM_BODY = orjson.dumps({"model": "bench-model", "stream": True,
                            "messages": [{"role": "user", "content": "Say something long."}]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return time.monotonic() - t0
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_pids(pid: int) -> list[int]:
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in kids:
        out += tree_pids(int(k))
    return out


async def _load(url: str, body: bytes, concurrency: int, seconds: float,
                stream: bool) -> list[float]:
    import aiohttp

    lat: list[float] = []
    deadline = time.monotonic() + seconds
    conn = aiohttp.TCPConnector(limit=0)
    headers = {"content-type": "application/json", "authorization": "Bearer bench"}
    async with aiohttp.ClientSession(connector=conn) as session:
        async def worker() -> None:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    if stream:
                        async for _ in resp.content.iter_any():
                            pass
                    else:
                        await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url}: HTTP {resp.status}")
                lat.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat


def _load_proc(args: tuple[str, bytes, int, float, bool], q: multiprocessing.Queue) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    q.put(asyncio.run(_load(*args)))


def run_load(url: str, body: bytes, concurrency: int, seconds: float,
             stream: bool) -> list[float]:
    q: multiprocessing.Queue = multiprocessing.Queue()
    p = multiprocessing.Process(target=_load_proc,
                                args=((url, body, concurrency, seconds, stream), q))
    p.start()
    result = q.get(timeout=seconds + 60)
    p.join()
    return result


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def measure(name: str, url: str, body: bytes, c: int, seconds: float, stream: bool,
            pids: list[int]) -> dict[str, float]:
    run_load(url, body, c, min(1.0, seconds), stream)  # warm-up
    cpu0 = sum(proc_cpu_s(p) for p in pids)
    lat = run_load(url, body, c, seconds, stream)
    cpu1 = sum(proc_cpu_s(p) for p in pids)
    n = len(lat)
    return {"rps": n / seconds, "p50": pct(lat, 0.5), "p99": pct(lat, 0.99),
            "cpu_us": (cpu1 - cpu0) / n * 1e6 if pids else 0.0, "n": n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", default="1,64")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    conc = [int(c) for c in args.concurrency.split(",")]

    fake_port, gw_port = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp(prefix="thrifty-bench-"))
    cfg = tmp / "bench.yaml"
    cfg.write_text(
        "providers:\n"
        f"  fake:\n    vendor: vllm\n    base_url: http://127.0.0.1:{fake_port}/v1\n"
        "models:\n"
        "  bench-model:\n    provider: fake\n    price: {input: 0.15, output: 0.60}\n"
        f"ledger:\n  path: {tmp / 'ledger.db'}\n"
    )
    env = {**os.environ, "THRIFTY_MASTER_KEY": ""}
    procs = []
    try:
        fake = subprocess.Popen([sys.executable, "-m", "thrifty.cli.main", "fake-provider",
                                 "--wire", "openai", "--port", str(fake_port)], env=env)
        procs.append(fake)
        wait_port(fake_port)
        t0 = time.monotonic()
        gw = subprocess.Popen([sys.executable, "-m", "thrifty.cli.main", "serve", "--config",
                               str(cfg), "--port", str(gw_port), "--workers",
                               str(args.workers)], env=env, stderr=subprocess.DEVNULL)
        procs.append(gw)
        start_s = wait_port(gw_port)
        del t0
        time.sleep(0.5)
        gw_pids = tree_pids(gw.pid)
        idle_rss = sum(proc_rss_mb(p) for p in gw_pids)
        direct = f"http://127.0.0.1:{fake_port}/v1/chat/completions"
        via = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
        rows = []
        for stream in (False, True):
            body = STREAM_BODY if stream else BODY
            for c in conc:
                d = measure("direct", direct, body, c, args.seconds, stream, [])
                g = measure("thrifty", via, body, c, args.seconds, stream, gw_pids)
                rows.append((("stream" if stream else "json"), c, d, g))
        peak_rss = sum(proc_rss_mb(p, "VmHWM") for p in gw_pids)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    print(f"thrifty overhead on loopback: {os.cpu_count()} cores, python "
          f"{sys.version.split()[0]}, {args.seconds:.0f}s per point, workers={args.workers}")
    print(f"gateway start to listening: {start_s:.2f} s; RSS idle {idle_rss:.0f} MB, "
          f"peak {peak_rss:.0f} MB")
    hdr = (f"{'kind':6} {'c':>3} | {'direct rps':>10} {'thrifty rps':>11} {'ratio':>6} | "
           f"{'p50 direct':>10} {'p50 thrifty':>11} {'+p50 ms':>8} | {'p99 direct':>10} "
           f"{'p99 thrifty':>11} {'+p99 ms':>8} | {'gw CPU/req':>10}")
    print(hdr)
    print("-" * len(hdr))
    for kind, c, d, g in rows:
        print(f"{kind:6} {c:>3} | {d['rps']:>10.0f} {g['rps']:>11.0f} "
              f"{g['rps'] / d['rps']:>6.2f} | {d['p50']:>10.2f} {g['p50']:>11.2f} "
              f"{g['p50'] - d['p50']:>8.2f} | {d['p99']:>10.2f} {g['p99']:>11.2f} "
              f"{g['p99'] - d['p99']:>8.2f} | {g['cpu_us']:>8.0f}us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
