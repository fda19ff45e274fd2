#!/usr/bin/env python3
"""What budget checks cost per request: `thrifty serve` in front of a fast fake, with no limit
rules, with 3 rules counted in memory, and with the same 3 rules counted in Redis. Prints
the p50 latency the checks add and the gateway's CPU per request, each as a ratio against
the no-limits gateway measured in the same run (rounds interleave the three, medians shown).

    python benchmarks/budget_overhead.py [--seconds 2] [--rounds 3] [--concurrency 1,32]

The rules never refuse (their amounts are huge); one has a tiny soft_ratio, so every answer
carries x-thrifty-budget-warning, which proves the checks ran on every request. Loopback
only; Redis at 127.0.0.1:6379 (a unique key prefix, deleted at the end); every process this
script starts is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from bench_procs import TICK, Proc, free_port, thrifty_argv, wait_port

REDIS_URL = "redis://127.0.0.1:6379/0"
BODY = orjson.dumps({"model": "bench-model", "max_tokens": 16,
                     "messages": [{"role": "user", "content": "echo: hello world"}]})
RULES: list[dict[str, object]] = [
    # soft_ratio x amount < 1: the very first request of a window already warns
    {"resource": "requests", "window": "minute", "scope": "global", "amount": 10**8,
     "soft_ratio": 1e-9},
    {"resource": "usd", "window": "day", "scope": "model", "value": "*", "amount": "1000000"},
    {"resource": "output_tokens", "window": "minute", "scope": "provider", "value": "*",
     "amount": 10**12},
]
WARNING = "x-thrifty-budget-warning"
NO_MASTER_KEY = {"THRIFTY_MASTER_KEY": ""}  # loopback, no auth: as the other benchmarks


def proc_cpu_s(pid: int) -> float:
    """CPU seconds of a process this script did not start (redis-server)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def redis_server_pid() -> int | None:
    """The local redis-server's PID, to read its CPU time (None if it is not visible)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "redis-server":
                    return int(entry.name)
            except OSError:
                continue
    return None


# -- the load (a separate process, so the client's CPU is not the gateway's) -------------------

async def _load(url: str, concurrency: int, seconds: float) -> tuple[list[float], int]:
    import aiohttp

    lat: list[float] = []
    warned = 0
    deadline = time.monotonic() + seconds
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def worker() -> None:
            nonlocal warned
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                async with session.post(url, data=BODY, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url}: HTTP {resp.status}")
                    warned += WARNING in resp.headers
                lat.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat, warned


def _load_proc(url: str, concurrency: int, seconds: float, q: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    q.put(asyncio.run(_load(url, concurrency, seconds)))


def run_load(url: str, concurrency: int, seconds: float) -> tuple[list[float], int]:
    q: Any = multiprocessing.Queue()
    p = multiprocessing.Process(target=_load_proc, args=(url, concurrency, seconds, q))
    p.start()
    result: tuple[list[float], int] = q.get(timeout=seconds + 60)
    p.join()
    return result


@dataclass
class Point:
    n: int
    p50_ms: float
    cpu_us: float
    redis_us: float


def measure(gw: Gateway, c: int, seconds: float, redis_pid: int | None) -> Point:
    run_load(gw.url, c, min(0.5, seconds))  # warm-up
    before = [gw.proc.cpu_s(), proc_cpu_s(redis_pid) if redis_pid else 0.0]
    lat, warned = run_load(gw.url, c, seconds)
    after = [gw.proc.cpu_s(), proc_cpu_s(redis_pid) if redis_pid else 0.0]
    n = len(lat)
    expected = n if gw.rules else 0
    if warned != expected:
        raise RuntimeError(f"{gw.name}: {warned} of {n} answers carried {WARNING}, "
                           f"expected {expected}: the limit rules did not run")
    redis_s = after[1] - before[1] if redis_pid else 0.0
    return Point(n, statistics.median(lat) * 1000, (after[0] - before[0]) / n * 1e6,
                 redis_s / n * 1e6)


# -- the processes ----------------------------------------------------------------------------

@dataclass
class Gateway:
    name: str
    proc: Proc
    url: str
    rules: bool


def start_gateway(name: str, limits: dict[str, object] | None, fake_port: int, tmp: Path,
                  procs: list[Proc]) -> Gateway:
    cfg: dict[str, object] = {
        "providers": {"fake": {"vendor": "vllm",
                               "base_url": f"http://127.0.0.1:{fake_port}/v1"}},
        "models": {"bench-model": {"provider": "fake",
                                   "price": {"input": "0.15", "output": "0.60"}}},
        "ledger": {"path": str(tmp / f"{name}.db")},
    }
    if limits is not None:
        cfg["limits"] = limits
    path = tmp / f"{name}.yaml"
    path.write_bytes(orjson.dumps(cfg))  # JSON is YAML
    port = free_port()
    proc = Proc(name, [*thrifty_argv(), "serve", "--config", str(path), "--port", str(port)],
                env=NO_MASTER_KEY)
    procs.append(proc)
    wait_port(port, proc)
    return Gateway(name, proc, f"http://127.0.0.1:{port}/v1/chat/completions",
                   limits is not None)


def delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def report(results: dict[tuple[str, int], list[Point]], conc: list[int], names: list[str],
           seconds: float) -> None:
    hdr = (f"{'counters':16} {'c':>3} | {'rps':>6} {'p50 ms':>7} {'+p50 ms':>8} "
           f"{'p50 x':>6} | {'gw CPU/req':>10} {'+CPU':>7} {'CPU x':>6} | {'redis CPU/req':>13}")
    print(hdr)
    print("-" * len(hdr))
    for c in conc:
        base_p50 = statistics.median(p.p50_ms for p in results[(names[0], c)])
        base_cpu = statistics.median(p.cpu_us for p in results[(names[0], c)])
        for name in names:
            pts = results[(name, c)]
            p50 = statistics.median(p.p50_ms for p in pts)
            cpu = statistics.median(p.cpu_us for p in pts)
            rps = statistics.median(p.n for p in pts) / seconds
            redis_us = statistics.median(p.redis_us for p in pts)
            print(f"{name:16} {c:>3} | {rps:>6.0f} {p50:>7.3f} {p50 - base_p50:>+8.3f} "
                  f"{p50 / base_p50:>6.2f} | {cpu:>8.0f}us {cpu - base_cpu:>+5.0f}us "
                  f"{cpu / base_cpu:>6.2f} | {redis_us:>11.0f}us")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="measured seconds per point")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    ap.add_argument("--concurrency", default="1,32")
    args = ap.parse_args()
    conc = [int(c) for c in args.concurrency.split(",")]
    prefix = f"thrifty:bench:{uuid.uuid4().hex[:12]}:"
    tmp = Path(tempfile.mkdtemp(prefix="thrifty-budget-bench-"))
    procs: list[Proc] = []
    results: dict[tuple[str, int], list[Point]] = {}
    rss: dict[str, tuple[float, float]] = {}
    try:
        fake_port = free_port()
        fake = Proc("fake-provider", [*thrifty_argv(), "fake-provider", "--wire", "openai",
                                      "--port", str(fake_port)])
        procs.append(fake)
        wait_port(fake_port, fake)
        gateways = [
            start_gateway("none", None, fake_port, tmp, procs),
            start_gateway("memory, 3 rules", {"backend": "memory", "rules": RULES},
                          fake_port, tmp, procs),
            start_gateway("redis, 3 rules", {"backend": "redis", "redis_url": REDIS_URL,
                                             "redis_prefix": prefix, "rules": RULES},
                          fake_port, tmp, procs),
        ]
        redis_pid = redis_server_pid()
        rss = {gw.name: (gw.proc.rss_mb(), 0.0) for gw in gateways}
        for _ in range(args.rounds):
            for c in conc:
                for gw in gateways:
                    results.setdefault((gw.name, c), []).append(
                        measure(gw, c, args.seconds, redis_pid))
        rss = {gw.name: (rss[gw.name][0], gw.proc.rss_mb()) for gw in gateways}
    finally:
        for proc in procs:
            proc.stop()
        delete_prefix(prefix)

    print(f"budget-check overhead on loopback: {os.cpu_count()} cores, python "
          f"{sys.version.split()[0]}, {args.rounds} rounds x {args.seconds:g} s per point "
          "(medians), 1 gateway worker, SQLite ledger on, fake provider without latency")
    print("rules: global requests/minute (soft warning on every answer), model usd/day, "
          "provider output_tokens/minute; x = ratio to the no-limits gateway")
    report(results, conc, [gw.name for gw in gateways], args.seconds)
    print("gateway RSS before -> after the run: " + "; ".join(
        f"{name} {a:.0f} -> {b:.0f} MB" for name, (a, b) in rss.items()))
    if redis_pid is None:
        print("(redis-server's PID is not visible here: its CPU is not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
