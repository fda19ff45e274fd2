"""Chaos: thousands of requests through the real gateway over HTTP while one of each
model's two deployments fails 30% of its calls in every way a provider can fail, on all
three wire formats. Clients must see no failure, and the money must add up: one ledger row
per request, each row the sum of its attempts, and the whole bill equal to what the fake
providers reported serving, priced at the configured prices. Then: every deployment down
gives a prompt 503 with retry-after, never a hang."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from openai import AsyncOpenAI

from tests.conftest import FAKE_KEYS, GatewayFactory, RunningGateway
from thrifty.fake import ALL_FAULTS, RunningFake, start_fake
from thrifty.pricing.cost import compute_cost, to_nano_usd
from thrifty.pricing.price import Price

WIRE_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5",
               "gemini": "gemini-2.5-flash"}
PRICES: dict[str, dict[str, str]] = {
    "openai": {"input": "0.15", "output": "0.60", "cached_input": "0.075"},
    "anthropic": {"input": "0.80", "output": "4.00", "cached_input": "0.08",
                  "cache_write": "1.00"},
    "gemini": {"input": "0.10", "output": "0.40", "cached_input": "0.025"},
}
N_REQUESTS = 2000
CONCURRENCY = 50
ERROR_RATE = 0.3
HANG_S = 3.0
"""How long a ``timeout`` fault stays silent: past the gateway's 1 s first-token deadline."""
REQUEST_TIMEOUT_S = 20.0
SERVER = {"first_token_timeout_s": 1.0, "request_timeout_s": REQUEST_TIMEOUT_S}
RETRIES = {"max_attempts": 4, "base_s": 0.05, "max_backoff_s": 0.5}
# The breakers would take the flaky deployments out of rotation after their first 429
# (retry-after opens them at once) and keep most traffic away from the faults. This test
# is about failover, continuation and billing under faults, so they stay in rotation;
# breakers have their own tests (test_breaker_*.py).
LENIENT_BREAKER = {"failure_threshold": 1000, "min_requests": 1000, "error_rate": 1.0,
                   "open_on_retry_after": False}


def public(wire: str) -> str:
    return f"m-{wire}"


def base_url(fake: RunningFake) -> str:
    return f"{fake.base_url}/v1" if fake.wire == "openai" else fake.base_url


def price_of(wire: str) -> Price:
    return Price.of(**PRICES[wire])


async def start_pair(wire: str, *, flaky_rate: float, ok_rate: float = 0.0,
                     faults: Sequence[str] = ALL_FAULTS, seed: int = 0,
                     hang_s: float = HANG_S) -> dict[str, RunningFake]:
    """Two fakes of one wire, keyed by provider name: ``{wire}-flaky`` and ``{wire}-ok``."""
    out: dict[str, RunningFake] = {}
    for name, rate in ((f"{wire}-flaky", flaky_rate), (f"{wire}-ok", ok_rate)):
        out[name] = await start_fake(wire, error_rate=rate, faults=faults, seed=seed,
                                     api_key=FAKE_KEYS[wire], timeout_hang_s=hang_s)
        seed += 1
    return out


def chaos_config(fakes: dict[str, RunningFake], db: Path,
                 breaker: Mapping[str, object] | None = None,
                 server: dict[str, float] | None = None) -> dict[str, Any]:
    """One model per wire, served by that wire's two fakes as two deployments."""
    wires = sorted({f.wire for f in fakes.values()})
    return {
        "server": server or SERVER,
        "providers": {name: {"vendor": f.wire, "base_url": base_url(f),
                             "api_key": FAKE_KEYS[f.wire]} for name, f in fakes.items()},
        "models": {public(w): {"deployments": [
            {"provider": name, "model": WIRE_MODELS[w]} for name, f in fakes.items()
            if f.wire == w], "price": PRICES[w]} for w in wires},
        "resilience": {"stream_failover": "continue", "retries": RETRIES,
                       "health": {"breaker": dict(breaker or {})}},
        "ledger": {"path": str(db)},
    }


@pytest.fixture
async def chaos_fakes() -> AsyncIterator[dict[str, RunningFake]]:
    fakes: dict[str, RunningFake] = {}
    try:
        for i, wire in enumerate(WIRE_MODELS):
            fakes.update(await start_pair(wire, flaky_rate=ERROR_RATE, seed=10 * i))
        yield fakes
    finally:
        for f in fakes.values():
            await f.close()


# -- the load ------------------------------------------------------------------------------


@dataclass
class Result:
    request_id: str | None = None
    failure: str | None = None


def request_body(i: int) -> dict[str, Any]:
    wire = list(WIRE_MODELS)[i % 3]
    body: dict[str, Any] = {
        "model": public(wire),
        "messages": [{"role": "user", "content": f"Request {i}: how do gateways save money?"}],
    }
    if (i // 3) % 2:  # every model gets streamed and plain requests alike
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


async def plain(client: AsyncOpenAI, body: dict[str, Any]) -> Result:
    raw = await client.chat.completions.with_raw_response.create(**body)
    if raw.http_response.status_code != 200:
        return Result(failure=f"HTTP {raw.http_response.status_code}")
    reply = raw.parse()
    ext = (reply.model_extra or {}).get("thrifty") or {}
    if not reply.choices or not reply.choices[0].message.content:
        return Result(ext.get("request_id"), "no content")
    return Result(ext.get("request_id"), None if "cost_usd" in ext else "no thrifty cost")


async def streamed(client: AsyncOpenAI, body: dict[str, Any]) -> Result:
    finish: str | None = None
    ext: dict[str, Any] = {}
    text = ""
    stream = await client.chat.completions.create(**body)
    async for chunk in stream:  # the SDK raises on an error event
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        if chunk.usage is not None:
            ext = (chunk.model_extra or {}).get("thrifty") or {}
    rid = ext.get("request_id")
    if finish is None:
        return Result(rid, "stream ended without a finish_reason")
    if not text:
        return Result(rid, "stream carried no text")
    return Result(rid, None if "cost_usd" in ext else "final usage chunk has no thrifty cost")


async def one(client: AsyncOpenAI, i: int, gate: asyncio.Semaphore) -> Result:
    body = request_body(i)
    async with gate:
        try:
            return await (streamed(client, body) if body.get("stream") else plain(client, body))
        except Exception as exc:  # any exception is a failure the client saw
            return Result(failure=f"{type(exc).__name__}: {exc}")


async def drive(gw: RunningGateway, n: int, concurrency: int) -> list[Result]:
    gate = asyncio.Semaphore(concurrency)
    client = AsyncOpenAI(base_url=gw.v1, api_key="x", max_retries=0, timeout=60)
    try:
        return list(await asyncio.gather(*(one(client, i, gate) for i in range(n))))
    finally:
        await client.close()


def attempt_rows(db: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM attempts")]
    finally:
        con.close()


def usage_key(row: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (row["input_tokens"], row["cached_input_tokens"], row["cache_write_tokens"],
            row["output_tokens"], row["reasoning_tokens"])


# -- the proof -----------------------------------------------------------------------------


async def test_chaos_no_client_failures_and_bill_equals_served_usage(
    chaos_fakes: dict[str, RunningFake], gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw = await gateway_factory(chaos_config(chaos_fakes, tmp_path / "chaos.db",
                                            breaker=LENIENT_BREAKER))
    t0 = time.monotonic()
    results = await drive(gw, N_REQUESTS, CONCURRENCY)
    elapsed = time.monotonic() - t0
    print(f"\nchaos: {N_REQUESTS} requests in {elapsed:.1f} s")
    assert elapsed < 60, f"the load took {elapsed:.1f} s"

    failures = Counter(r.failure for r in results if r.failure)
    assert not failures, failures.most_common(5)

    rows = await gw.ledger_rows()  # flushes the ledger writer first
    attempts = attempt_rows(gw.db)
    ids = [r.request_id for r in results if r.request_id is not None]
    assert len(set(ids)) == N_REQUESTS
    assert sorted(r["request_id"] for r in rows) == sorted(ids)  # exactly one row each
    assert all(r["status"] == 200 for r in rows)

    by_request: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        by_request.setdefault(a["request_id"], []).append(a)
    for r in rows:
        mine = by_request.get(r["request_id"], [])
        assert mine, f"request {r['request_id']} has no attempt rows"
        assert r["cost_nano_usd"] == sum(a["cost_nano_usd"] for a in mine), r["request_id"]
        assert r["calls"] == len(mine)
    assert sum(len(v) for v in by_request.values()) == len(attempts)  # no orphan attempts

    # streams cut after their first token were continued on the other deployment (the
    # ledger's verdicts name the switch), not merely failed over before the first token
    continued = {a["request_id"] for a in attempts if "continu" in (a["verdict"] or "")}
    assert len(continued) >= 10, len(continued)
    _assert_faults_were_exercised(chaos_fakes, attempts)
    _assert_bill_equals_served(chaos_fakes, rows, attempts)


def _assert_faults_were_exercised(fakes: dict[str, RunningFake],
                                  attempts: list[dict[str, Any]]) -> None:
    """Every fault kind happened, and each one cost the request exactly one failed
    attempt on that deployment: nothing was retried blindly or lost."""
    for name, fake in fakes.items():
        outcomes = fake.stats.outcomes
        failed = sum(1 for a in attempts if a["provider"] == name and a["status"] != 200)
        faults = sum(outcomes[k] for k in ALL_FAULTS)
        assert outcomes["rejected"] == 0 and outcomes["aborted"] == 0, (name, outcomes)
        if name.endswith("-flaky"):
            assert all(outcomes[k] >= 3 for k in ALL_FAULTS), (name, dict(outcomes))
        else:
            assert faults == 0, (name, dict(outcomes))
        assert failed == faults, (name, failed, dict(outcomes))
        assert outcomes["ok"] == len(fake.stats.served)


def _assert_bill_equals_served(fakes: dict[str, RunningFake], rows: list[dict[str, Any]],
                               attempts: list[dict[str, Any]]) -> None:
    """The bill is exactly what the providers reported serving. The ledger prices and
    rounds each attempt to nano-dollars on its own, and a served request is one attempt,
    so the fakes' side is rounded per served usage too: the sums must then agree to the
    nano-dollar, with no tolerance."""
    billed = sum(r["cost_nano_usd"] for r in rows)
    assert billed == sum(a["cost_nano_usd"] for a in attempts)
    served_nano = 0
    for name, fake in fakes.items():
        price = price_of(fake.wire)
        served = [s.usage for s in fake.stats.served]
        served_nano += sum(to_nano_usd(compute_cost(u, price)) for u in served)
        # per deployment: the priced attempts are exactly the served usages
        priced = Counter(usage_key(a) for a in attempts
                         if a["provider"] == name and a["cost_nano_usd"])
        want = Counter((u.input_tokens, u.cached_input_tokens, u.cache_write_tokens,
                        u.output_tokens, u.reasoning_tokens) for u in served)
        extra = priced - want
        unserved = [{k: a[k] for k in ("status", "error_type", "output_tokens", "usage_known",
                                       "cost_nano_usd", "verdict")}
                    for a in attempts if a["provider"] == name and usage_key(a) in extra]
        assert priced == want, (name, extra, want - priced, unserved[:4])
    assert billed == served_nano, (billed, served_nano)
    estimated = [a for a in attempts if not a["usage_known"] and a["cost_nano_usd"]]
    assert not estimated, estimated[:3]


# -- everything down -----------------------------------------------------------------------


async def raw_post(gw: RunningGateway, body: dict[str, Any]) -> tuple[int, Any, bytes, float]:
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s, s.post(
        f"{gw.v1}/chat/completions", data=orjson.dumps(body),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S + 10),
    ) as r:
        data = await r.read()
        return r.status, r.headers, data, time.monotonic() - t0


@pytest.mark.parametrize("breaker", [{}, {"failure_threshold": 1}],
                         ids=["breakers-closed", "breakers-trip"])
async def test_every_deployment_down_is_a_prompt_503_with_retry_after(
    gateway_factory: GatewayFactory, tmp_path: Path, breaker: dict[str, object]
) -> None:
    fakes = await start_pair("openai", flaky_rate=1.0, ok_rate=1.0, faults=["503"])
    try:
        gw = await gateway_factory(chaos_config(fakes, tmp_path / "down.db", breaker=breaker))
        msg = [{"role": "user", "content": "anyone there?"}]
        for stream in (False, True, False, True):
            body: dict[str, Any] = {"model": "m-openai", "messages": msg, "stream": stream}
            status, headers, data, took = await raw_post(gw, body)
            assert status == 503, data
            assert orjson.loads(data)["error"]["code"] in ("upstream_unavailable",)
            assert float(headers["retry-after"]) >= 1, dict(headers)
            assert took < REQUEST_TIMEOUT_S / 4, took
        rows = await gw.ledger_rows()
        assert [r["status"] for r in rows] == [503] * 4
        assert all(r["cost_nano_usd"] == 0 for r in rows)
    finally:
        for f in fakes.values():
            await f.close()


async def test_every_deployment_hanging_ends_within_the_total_deadline(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Deployments that accept and never answer: each attempt is cut at the first-token
    deadline and the request as a whole at ``request_timeout_s``, whatever the retries."""
    fakes = await start_pair("anthropic", flaky_rate=1.0, ok_rate=1.0, faults=["timeout"],
                             hang_s=30)
    total = 2.5
    try:
        gw = await gateway_factory(chaos_config(
            fakes, tmp_path / "hang.db",
            server={"first_token_timeout_s": 0.5, "request_timeout_s": total}))
        for stream in (False, True):
            body = {"model": "m-anthropic", "stream": stream,
                    "messages": [{"role": "user", "content": "hello?"}]}
            status, headers, data, took = await raw_post(gw, body)
            assert status in (503, 504), data
            assert float(headers["retry-after"]) >= 1, dict(headers)
            assert took < total + 0.5, took  # the deadline, plus scheduling slack
        rows = await gw.ledger_rows()
        assert len(rows) == 2 and all(r["cost_nano_usd"] == 0 for r in rows)
    finally:
        for f in fakes.values():
            await f.close()
