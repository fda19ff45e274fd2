#!/usr/bin/env python3
"""CPU per request of the gateway's own work, in process: ``Gateway.complete`` (plan,
budgets, execute, account, ledger row, metrics and drift observers) with
benchmarks/configs/harness.yaml, over an in-memory transport that answers every upstream
call with the same OpenAI body, against a reference loop doing only what any pass-through
proxy must (parse the client's body, decode and re-encode the upstream's answer).

    python benchmarks/engine_cpu.py [--requests 20000] [--rounds 5] [--ledger]
    python benchmarks/engine_cpu.py --profile      # one round under cProfile

No network, no HTTP server: this isolates what the issue-6 harness cannot (the engine's
share of thrifty's CPU per request), so a change to the request path can be measured in
seconds. The SQLite ledger's writer thread runs only with ``--ledger`` (its CPU is on
another thread, but it holds the GIL while it encodes rows).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import orjson

from thrifty.config.load import load_settings
from thrifty.config.resolve import resolve
from thrifty.core.ids import new_request_id
from thrifty.engine.gateway import Gateway, open_ledger
from thrifty.providers.base import UpstreamRequest
from thrifty.providers.transport import Deadlines, RawResponse, Transport
from thrifty.telemetry.metrics import Metrics
from thrifty.wire.openai_chat import parse_chat_request

CONFIG = Path(__file__).parent / "configs" / "harness.yaml"
BODY = orjson.dumps({"model": "mock-0ms", "max_tokens": 16,
                     "messages": [{"role": "user", "content": "echo: hello world"}]})
ANSWER = orjson.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "mock-0ms",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hello world"}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}})
HEADERS: Mapping[str, str] = {"content-type": "application/json"}


class CannedTransport(Transport):
    """Every upstream call answers at once with ANSWER."""

    async def send(self, up: UpstreamRequest, deadlines: Deadlines, provider: str
                   ) -> RawResponse:
        return RawResponse(200, HEADERS, ANSWER)


def gateway(ledger: bool, config: Path = CONFIG) -> Gateway:
    tmp = tempfile.mkdtemp(prefix="thrifty-engine-cpu-")
    os.environ.setdefault("BENCH_UPSTREAM_V1", "http://127.0.0.1:9/v1")
    os.environ["THRIFTY_BENCH_LEDGER"] = f"{tmp}/ledger.db"
    settings = load_settings(config)
    runtime = resolve(settings, base_dir=config.parent)
    gw = Gateway(runtime, ledger=open_ledger(runtime) if ledger else None,
                 transport=CannedTransport())
    gw.observers.append(Metrics(runtime.settings.telemetry.metrics))
    return gw


async def through_gateway(gw: Gateway, n: int) -> None:
    for _ in range(n):
        req = parse_chat_request(BODY, new_request_id())
        reply = await gw.complete(req, started=time.time())
        assert reply.body


async def reference(n: int) -> None:
    """What a bare pass-through does with the bodies, at the least."""
    for _ in range(n):
        body = orjson.loads(BODY)
        out = orjson.dumps(body)
        answer = orjson.loads(ANSWER)
        assert out and orjson.dumps(answer)
        await asyncio.sleep(0)


async def measure(coro_fn: object, n: int) -> float:
    t0 = time.process_time()
    await coro_fn(n)  # type: ignore[operator]
    return (time.process_time() - t0) / n * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ledger", action="store_true", help="with the SQLite ledger writer")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--config", type=Path, default=CONFIG,
                    help="another configuration (its models must answer to mock-0ms)")
    args = ap.parse_args()
    gw = gateway(args.ledger, args.config)
    await gw.start()
    try:
        await through_gateway(gw, 2_000)  # warm caches, counters, stats
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            await through_gateway(gw, args.requests)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(40)
            return
        ours, ref = [], []
        for _ in range(args.rounds):
            ref.append(await measure(reference, args.requests))
            ours.append(await measure(lambda n: through_gateway(gw, n), args.requests))
    finally:
        await gw.close()
    print(f"engine (process CPU per request)   : best {min(ours):.1f} us, "
          f"median {statistics.median(ours):.1f} us")
    print(f"reference (body decode/encode only): best {min(ref):.1f} us, "
          f"median {statistics.median(ref):.1f} us")
    print(f"ratio of the medians: {statistics.median(ours) / statistics.median(ref):.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
