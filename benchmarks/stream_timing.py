#!/usr/bin/env python3
"""What the shared harness does not measure: the time to first token a gateway adds to a
stream, whether chunks pass through as they arrive (never buffered whole), how long
`thrifty serve` takes to answer /readyz, and what `import thrifty` costs. Each figure sits
next to the same figure for the bare aiohttp pass-through (and no gateway) of the same run.

    python benchmarks/stream_timing.py [--streams 200] [--json]

The gateway runs on one CPU and the mock and client on the other, as in the harness; the
fast mock and the bare proxy come from the harness's venv (/tmp/bench-venv, made by its
setup.sh). Loopback only; every process is stopped by its PID.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
from bench_procs import (
    CHAT,
    Proc,
    cpus,
    free_port,
    start_bare,
    start_mock,
    start_thrifty,
    wait_http,
)

FAST_MODEL = "mock-0ms-itl1"  # 20 chunks 1 ms apart
SLOW_MODEL = "mock-0ms-itl20"  # 20 chunks 20 ms apart: buffering would be plain to see


@dataclass
class StreamFigures:
    ttft_p50_ms: dict[str, float] = field(default_factory=dict)
    ttft_p90_ms: dict[str, float] = field(default_factory=dict)
    arrivals: dict[str, int] = field(default_factory=dict)
    """Distinct reads that carried data, for one slow stream (20 events sent)."""
    first_share: dict[str, float] = field(default_factory=dict)
    """First data's arrival as a share of the slow stream's duration (buffered: ~1.0)."""
    start_s: dict[str, float] = field(default_factory=dict)
    import_ms: dict[str, float] = field(default_factory=dict)
    importtime_top: list[str] = field(default_factory=list)


def _body(model: str) -> bytes:
    return json.dumps({"model": model, "stream": True,
                       "stream_options": {"include_usage": True}, "max_tokens": 128,
                       "messages": [{"role": "user", "content": "Say something."}]}).encode()


async def _one_stream(session: aiohttp.ClientSession, url: str, body: bytes
                      ) -> tuple[float, list[float]]:
    """(seconds to the first data, arrival time of every read that carried data)."""
    t0 = time.perf_counter()
    arrivals: list[float] = []
    async with session.post(url, data=body,
                            headers={"content-type": "application/json"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url}: HTTP {resp.status}")
        async for chunk in resp.content.iter_any():
            if b"data:" in chunk:
                arrivals.append(time.perf_counter() - t0)
    if not arrivals:
        raise RuntimeError(f"{url}: no data events")
    return arrivals[0], arrivals


async def _stream_figures(urls: dict[str, str], n: int, out: StreamFigures) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        ttft: dict[str, list[float]] = {name: [] for name in urls}
        for url in urls.values():  # warm every path first
            for _ in range(20):
                await _one_stream(session, url, _body(FAST_MODEL))
        for _ in range(n):  # interleaved, so drift on the machine hits all alike
            for name, url in urls.items():
                first, _ = await _one_stream(session, url, _body(FAST_MODEL))
                ttft[name].append(first * 1000)
        for name, values in ttft.items():
            out.ttft_p50_ms[name] = statistics.median(values)
            out.ttft_p90_ms[name] = statistics.quantiles(values, n=10)[-1]
        for name, url in urls.items():
            first, arrivals = await _one_stream(session, url, _body(SLOW_MODEL))
            out.arrivals[name] = len(arrivals)
            out.first_share[name] = first / arrivals[-1]


def _startup(gw_cpus: set[int] | None, up_port: int, tmp: Path, out: StreamFigures,
             rounds: int = 5) -> None:
    thr, bare = [], []
    for i in range(rounds):
        port = free_port()
        p = start_thrifty(port, up_port, tmp / f"start-{i}.db", gw_cpus)
        try:
            thr.append(wait_http(f"http://127.0.0.1:{port}/readyz", p))
        finally:
            p.stop()
        port = free_port()
        b = start_bare(port, up_port, gw_cpus)
        if b is not None:
            try:
                bare.append(wait_http(f"http://127.0.0.1:{port}/health", b))
            finally:
                b.stop()
    out.start_s["thrifty"] = statistics.median(thr)
    if bare:
        out.start_s["bare-aiohttp"] = statistics.median(bare)


def _import_ms(python: str, module: str, rounds: int = 7) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; " \
           "print((time.perf_counter() - t) * 1000)"
    runs = [float(subprocess.run([python, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(rounds)]
    return statistics.median(runs)


def _imports(out: StreamFigures) -> None:
    out.import_ms["import thrifty"] = _import_ms(sys.executable, "thrifty")
    out.import_ms["import thrifty.server.app"] = _import_ms(sys.executable, "thrifty.server.app")
    out.import_ms["import aiohttp.web, uvloop"] = _import_ms(sys.executable,
                                                             "aiohttp.web, uvloop")
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import thrifty"],
                         capture_output=True, text=True, check=True).stderr
    rows = []
    for line in err.splitlines()[1:]:
        parts = line.split("|")
        if len(parts) == 3:
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    out.importtime_top = [f"{us / 1000:6.1f} ms  {name}" for us, name in rows[:5]]


def measure(n_streams: int = 200) -> StreamFigures:
    gw_cpus, lg_cpus = cpus()
    if lg_cpus:
        os.sched_setaffinity(0, lg_cpus)  # this client stays off the gateway's CPU
    out = StreamFigures()
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="thrifty-stream-") as d:
        tmp = Path(d)
        try:
            up = free_port()
            procs.append(start_mock(up, lg_cpus))
            urls = {"direct": f"http://127.0.0.1:{up}{CHAT}"}
            port = free_port()
            procs.append(start_thrifty(port, up, tmp / "ledger.db", gw_cpus))
            wait_http(f"http://127.0.0.1:{port}/readyz", procs[-1])
            urls["thrifty"] = f"http://127.0.0.1:{port}{CHAT}"
            bport = free_port()
            bare = start_bare(bport, up, gw_cpus)
            if bare is not None:
                procs.append(bare)
                wait_http(f"http://127.0.0.1:{bport}/health", bare)
                urls["bare-aiohttp"] = f"http://127.0.0.1:{bport}{CHAT}"
            asyncio.run(_stream_figures(urls, n_streams, out))
            for p in procs[1:]:
                p.stop()
            del procs[1:]
            _startup(gw_cpus, up, tmp, out)
        finally:
            for p in procs:
                p.stop()
    _imports(out)
    return out


def report(f: StreamFigures) -> list[str]:
    lines = ["stream timing (c=1, mock-0ms-itl1; medians of interleaved streams):"]
    for name in f.ttft_p50_ms:
        added = f.ttft_p50_ms[name] - f.ttft_p50_ms["direct"]
        lines.append(f"  {name:13} first data p50 {f.ttft_p50_ms[name]:6.2f} ms, p90 "
                     f"{f.ttft_p90_ms[name]:6.2f} ms, added over direct {added:+.2f} ms")
    lines.append("chunk pass-through (mock-0ms-itl20: 20 events 20 ms apart):")
    for name in f.arrivals:
        lines.append(f"  {name:13} {f.arrivals[name]:2d} separate arrivals, first data at "
                     f"{f.first_share[name]:.0%} of the stream's duration")
    lines.append("start-up to first 200 (median of 5):")
    for name, s in f.start_s.items():
        lines.append(f"  {name:13} {s:.2f} s")
    lines.append("imports (median of 7 fresh interpreters):")
    for name, ms in f.import_ms.items():
        lines.append(f"  {name:28} {ms:7.1f} ms")
    lines.append("  -X importtime, largest cumulative: " + "; ".join(
        r.strip() for r in f.importtime_top[:3]))
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    figures = measure(a.streams)
    print(json.dumps(asdict(figures), indent=1) if a.json else "\n".join(report(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
