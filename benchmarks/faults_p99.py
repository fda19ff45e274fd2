#!/usr/bin/env python3
"""Latency under provider faults: the same load through thrifty, first with fault-free fake
providers, then with one of each model's two deployments failing 30% of its calls (429,
500, 503, 529, timeout, reset, malformed, cut).

Three models (OpenAI, Anthropic and Gemini wires), two deployments each, every fake
provider in its own `thrifty fake-provider` process and the gateway in `thrifty serve`;
the load (half streamed) comes from this process. Prints p50 / p99 latency, client-visible
failures, upstream calls per request (from the ledger) and faults injected (from the fakes)
for each phase, and the p99 under faults as a ratio to the fault-free p99 of the same run.

    python benchmarks/faults_p99.py [--requests 1000] [--concurrency 50] [--error-rate 0.3]

Loopback only; every process is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

WIRE_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5",
               "gemini": "gemini-2.5-flash"}
PRICES = {"openai": {"input": 0.15, "output": 0.60}, "anthropic": {"input": 0.80, "output": 4.0},
          "gemini": {"input": 0.10, "output": 0.40}}
# Faults are only interesting while the flaky deployments get traffic, so the third phase
# keeps them in rotation however often they fail (worst case); the second uses the
# product's default breakers (what a deployment actually gets).
LENIENT_BREAKER = {"failure_threshold": 1000, "min_requests": 1000, "error_rate": 1.0,
                   "open_on_retry_after": False}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


@dataclass
class Fleet:
    """The processes of one phase: fake providers by name, then the gateway."""

    ports: dict[str, tuple[str, int]] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def start_fakes(fleet: Fleet, error_rate: float) -> None:
    for i, wire in enumerate(WIRE_MODELS):
        for kind, rate in (("flaky", error_rate), ("ok", 0.0)):
            port = free_port()
            fleet.procs.append(subprocess.Popen(
                [sys.executable, "-m", "thrifty.cli.main", "fake-provider", "--wire", wire,
                 "--port", str(port), "--error-rate", str(rate), "--seed", str(10 * i)],
                stdout=subprocess.DEVNULL))
            fleet.ports[f"{wire}-{kind}"] = (wire, port)
    for _, port in fleet.ports.values():
        wait_port(port)


def write_config(tmp: Path, fleet: Fleet, breaker: dict[str, Any]) -> Path:
    def url(wire: str, port: int) -> str:
        return f"http://127.0.0.1:{port}" + ("/v1" if wire == "openai" else "")

    cfg = {
        "server": {"first_token_timeout_s": 1.0, "request_timeout_s": 20},
        "providers": {name: {"vendor": wire, "base_url": url(wire, port), "api_key": "k"}
                      for name, (wire, port) in fleet.ports.items()},
        "models": {f"m-{w}": {"deployments": [
            {"provider": name, "model": m} for name, (wire, _) in fleet.ports.items()
            if wire == w], "price": PRICES[w]} for w, m in WIRE_MODELS.items()},
        "resilience": {"stream_failover": "continue",
                       "retries": {"max_attempts": 4, "base_s": 0.05, "max_backoff_s": 0.5},
                       "health": {"breaker": breaker}},
        "ledger": {"path": str(tmp / "ledger.db")},
    }
    path = tmp / "thrifty.yaml"
    path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
    return path


def body(i: int) -> bytes:
    wire = list(WIRE_MODELS)[i % 3]
    b: dict[str, Any] = {"model": f"m-{wire}", "messages": [
        {"role": "user", "content": f"Request {i}: how do gateways save money?"}]}
    if (i // 3) % 2:
        b.update(stream=True, stream_options={"include_usage": True})
    return orjson.dumps(b)


def failure_of(status: int, data: bytes, stream: bool) -> str | None:
    """What the client would call a failure, or None."""
    if status != 200:
        return f"HTTP {status}"
    if not stream:
        reply = orjson.loads(data)
        ok = reply["choices"][0]["message"].get("content") and "thrifty" in reply
        return None if ok else "no content or cost"
    if b'data: {"error"' in data:
        return "error event"
    if b'"finish_reason":"' not in data or b'"thrifty":' not in data:
        return "no finish_reason or cost"
    return None


async def load(url: str, n: int, concurrency: int, first: int = 0
               ) -> tuple[list[float], Counter[str]]:
    import aiohttp

    latencies: list[float] = []
    failures: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=60)

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        payload = body(i)
        async with gate:
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=payload, timeout=timeout,
                                        headers={"content-type": "application/json"}) as r:
                    data = await r.read()
                    failure = failure_of(r.status, data, b'"stream":true' in payload)
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = type(exc).__name__
            latencies.append(time.perf_counter() - t0)
            if failure:
                failures[failure] += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(one(session, first + i) for i in range(n)))
    return latencies, failures


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def injected_faults(fleet: Fleet) -> int:
    kinds = ("429", "500", "503", "529", "timeout", "reset", "malformed", "cut")
    total = 0
    for _, port in fleet.ports.values():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/stats", timeout=10) as r:
            outcomes = json.loads(r.read())["outcomes"]
        total += sum(outcomes.get(k, 0) for k in kinds)
    return total


def run_phase(name: str, error_rate: float, breaker: dict[str, Any],
              args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="thrifty-faults-"))
    fleet = Fleet()
    env = {**os.environ, "THRIFTY_MASTER_KEY": ""}
    try:
        start_fakes(fleet, error_rate)
        cfg = write_config(tmp, fleet, breaker)
        port = free_port()
        fleet.procs.append(subprocess.Popen(
            [sys.executable, "-m", "thrifty.cli.main", "serve", "--config", str(cfg),
             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        wait_port(port)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        asyncio.run(load(url, 60, 20, first=10**6))  # warm-up, not measured
        t0 = time.monotonic()
        lat, failures = asyncio.run(load(url, args.requests, args.concurrency))
        wall = time.monotonic() - t0
        faults = injected_faults(fleet)
        fleet.procs[-1].send_signal(signal.SIGTERM)  # the gateway writes its ledger out
        fleet.procs[-1].wait(timeout=30)
        con = sqlite3.connect(tmp / "ledger.db")
        requests, calls = con.execute("SELECT COUNT(*), SUM(calls) FROM requests").fetchone()
        con.close()
    finally:
        fleet.stop()
    return {"name": name, "n": len(lat), "wall": wall, "p50": pct(lat, 0.5),
            "p99": pct(lat, 0.99), "max": max(lat) * 1000, "failures": failures,
            "calls": calls / requests, "faults": faults}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--error-rate", type=float, default=0.3)
    args = ap.parse_args()
    phases = [
        run_phase("fault-free", 0.0, {}, args),
        run_phase(f"{args.error_rate:.0%} faults", args.error_rate, {}, args),
        run_phase(f"{args.error_rate:.0%} faults, no breaker", args.error_rate,
                  LENIENT_BREAKER, args),
    ]
    print(f"thrifty under provider faults, loopback: {os.cpu_count()} cores, python "
          f"{sys.version.split()[0]}, {args.requests} requests per phase at concurrency "
          f"{args.concurrency}, half streamed, 3 models x 2 deployments, first-token "
          "deadline 1 s")
    print(f"{'phase':28} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'p99 x':>6} "
          f"{'failures':>8} {'calls/req':>9} {'faults':>6} {'wall s':>6}")
    base = phases[0]["p99"]
    for p in phases:
        print(f"{p['name']:28} {p['p50']:7.1f} {p['p99']:7.1f} {p['max']:7.1f} "
              f"{p['p99'] / base:6.1f} {sum(p['failures'].values()):8d} {p['calls']:9.3f} "
              f"{p['faults']:6d} {p['wall']:6.1f}")
        for kind, count in p["failures"].most_common(3):
            print(f"    {count} x {kind}")
    return 1 if any(p["failures"] for p in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
