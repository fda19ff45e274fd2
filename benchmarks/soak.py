#!/usr/bin/env python3
"""Memory soak: 100,000 requests through `thrifty serve` with every per-request feature on
(benchmarks/configs/harness.yaml: ledger, routing alias, budget rules, metrics, drift) in
front of `thrifty fake-provider`, printing the gateway's RSS every 10,000 requests. Checks
(printed PASS/FAIL, not asserted: benchmarks run by hand) the issue's two memory targets:
RSS under 150 MB after 100,000 requests, and no growth between the 50,000th and the
100,000th (at most 2 MB or 2%, whichever is larger: allocator noise).

    python benchmarks/soak.py [--requests 100000] [--every 10000] [--concurrency 64]

One request in five streams. Load from wrk when it is installed (a Lua script counts the
answers and wrk is stopped at each mark), else from an aiohttp client; the gateway runs on
one CPU, the fake provider and the load on the other. Loopback only; every process is
stopped by its PID; the ledger is checked for one row per request at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_procs import (
    CHAT,
    Proc,
    cpus,
    free_port,
    have_wrk,
    start_thrifty,
    thrifty_argv,
    wait_http,
    wait_port,
)

JSON_BODY = {"model": "mock-0ms", "max_tokens": 128,
             "messages": [{"role": "system", "content": "You are a helpful assistant."},
                          {"role": "user", "content": "Write one sentence about soak tests."}]}
STREAM_BODY = {**JSON_BODY, "stream": True, "stream_options": {"include_usage": True}}
CEILING_MB = 150.0

WRK_LUA = """
local n, target = 0, tonumber(os.getenv("SOAK_N"))
local bodies = {}
for i, name in ipairs({"SOAK_JSON", "SOAK_STREAM"}) do
  local f = assert(io.open(os.getenv(name), "rb")); bodies[i] = f:read("*a"); f:close()
end
local k = 0
request = function()
  k = k + 1
  local body = (k % 5 == 0) and bodies[2] or bodies[1]
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body)
  n = n + 1
  if n == target then io.write("SOAKDONE\\n"); io.flush(); wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('SOAKJSON {"requests":%d,"bad":%d}\\n', summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_slice(url: str, n: int, conc: int, tmp: Path, lg_cpus: set[int] | None) -> int:
    """Send about ``n`` requests (wrk stops at the n-th answer); returns how many it sent."""
    env = {**os.environ, "SOAK_N": str(n), "SOAK_JSON": str(tmp / "json.json"),
           "SOAK_STREAM": str(tmp / "stream.json")}
    pin = (lambda: os.sched_setaffinity(0, lg_cpus)) if lg_cpus else None
    p = subprocess.Popen(["wrk", "-t1", f"-c{conc}", "-d600s", "-s", str(tmp / "soak.lua"), url],
                         stdout=subprocess.PIPE, text=True, env=env, preexec_fn=pin)
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("SOAKDONE"):
            p.send_signal(signal.SIGINT)  # wrk prints its summary and exits
            break
    rest = p.stdout.read()
    p.wait(timeout=30)
    summary = json.loads(rest.split("SOAKJSON ", 1)[1].splitlines()[0])
    if summary["bad"]:
        raise RuntimeError(f"{summary['bad']} failed requests in this slice")
    return int(summary["requests"])


async def _aiohttp_slice(url: str, n: int, conc: int) -> int:
    import aiohttp

    left = [n]
    bodies = [json.dumps(JSON_BODY).encode(), json.dumps(STREAM_BODY).encode()]

    async def worker(session: aiohttp.ClientSession) -> None:
        while left[0] > 0:
            left[0] -= 1
            body = bodies[1] if left[0] % 5 == 0 else bodies[0]
            async with session.post(url, data=body,
                                    headers={"content-type": "application/json"}) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(worker(session) for _ in range(conc)))
    return n


def soak(total: int, every: int, conc: int, workers: int) -> list[tuple[int, float]]:
    gw_cpus, lg_cpus = cpus()
    if lg_cpus:
        os.sched_setaffinity(0, lg_cpus)
    marks: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="thrifty-soak-") as d:
        tmp = Path(d)
        (tmp / "json.json").write_text(json.dumps(JSON_BODY))
        (tmp / "stream.json").write_text(json.dumps(STREAM_BODY))
        (tmp / "soak.lua").write_text(WRK_LUA)
        up_port, port = free_port(), free_port()
        upstream = Proc("fake-provider", [*thrifty_argv(), "fake-provider", "--wire", "openai",
                                          "--port", str(up_port)], cpus=lg_cpus)
        gw: Proc | None = None
        try:
            wait_port(up_port, upstream)
            gw = start_thrifty(port, up_port, tmp / "ledger.db", gw_cpus, workers=workers)
            print(f"thrifty ready in {wait_http(f'http://127.0.0.1:{port}/readyz', gw):.2f} s;"
                  f" load from {'wrk' if have_wrk() else 'aiohttp'}, c={conc}", flush=True)
            url = f"http://127.0.0.1:{port}{CHAT}"
            time.sleep(0.5)
            marks.append((0, gw.rss_mb()))
            print(f"{0:>9,} requests  RSS {marks[-1][1]:6.1f} MB (idle)", flush=True)
            sent, t0 = 0, time.monotonic()
            while sent < total:
                n = min(every, total - sent)
                sent += (wrk_slice(url, n, conc, tmp, lg_cpus) if have_wrk()
                         else asyncio.run(_aiohttp_slice(url, n, conc)))
                time.sleep(0.5)  # the ledger writer flushes every 0.2 s
                marks.append((sent, gw.rss_mb()))
                rate = sent / (time.monotonic() - t0)
                print(f"{sent:>9,} requests  RSS {marks[-1][1]:6.1f} MB  ({rate:,.0f} req/s "
                      f"overall)", flush=True)
            print(f"peak RSS (VmHWM) {gw.rss_mb('VmHWM'):.1f} MB", flush=True)
        finally:
            if gw is not None:
                gw.stop()  # SIGTERM: the ledger writes what is still queued
            upstream.stop()
        with sqlite3.connect(tmp / "ledger.db") as db:
            rows = db.execute("SELECT COUNT(*), SUM(status = 200) FROM requests").fetchone()
        print(f"ledger: {rows[0]:,} rows, {rows[1]:,} answered 200; wrk counted {sent:,} answers "
              "(the rest were in flight when the load stopped at a mark)")
    return marks


def verdicts(marks: list[tuple[int, float]]) -> list[str]:
    last_n, last = marks[-1]
    half = min(marks, key=lambda m: abs(m[0] - last_n / 2))
    growth = last - half[1]
    allowed = max(2.0, 0.02 * half[1])
    return [
        f"{'PASS' if last < CEILING_MB else 'FAIL'}  RSS after {last_n:,} requests "
        f"{last:.1f} MB (< {CEILING_MB:.0f} MB)",
        f"{'PASS' if growth <= allowed else 'FAIL'}  growth from {half[0]:,} to {last_n:,} "
        f"requests {growth:+.1f} MB (<= {allowed:.1f} MB)",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    marks = soak(a.requests, a.every, a.concurrency, a.workers)
    print("\n".join(verdicts(marks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
