"""The demo's body (kept apart from ``demo.py`` so ``thrifty --help`` imports nothing)."""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from rich.console import Console

from thrifty.cli.demo import DEMO_VENDORS
from thrifty.cli.demo_savings import show_savings
from thrifty.config.load import parse_settings
from thrifty.config.resolve import resolve
from thrifty.engine.gateway import Gateway
from thrifty.fake import RunningFake, start_fake
from thrifty.ledger.spend import spend_table
from thrifty.ledger.sqlite import SQLiteLedger
from thrifty.ledger.writer import LedgerWriter
from thrifty.pricing.catalog import load_catalog
from thrifty.server.app import build_app

_KEY = "demo-key-not-secret"
_LONG_CONTEXT = " ".join(
    f"Policy clause {i}: refunds are processed within {i % 9 + 2} business days."
    for i in range(400)
)
_WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
_SCHEMA = {"type": "json_schema", "json_schema": {"name": "sentiment", "schema": {
    "type": "object", "properties": {"label": {"type": "string",
                                               "enum": ["positive", "negative"]},
                                     "score": {"type": "number"}},
    "required": ["label", "score"], "additionalProperties": False}}}


def pick_models() -> dict[str, list[str]]:
    """For each demo vendor, the preferred catalog ids that exist, else its cheapest."""
    catalog = load_catalog()
    chosen: dict[str, list[str]] = {}
    for vendor, (_, _, _, preferred) in DEMO_VENDORS.items():
        have = [m for m in preferred if catalog.get(vendor, m) is not None]
        if not have:
            models = sorted(catalog.models(vendor), key=lambda m: m.price.input)
            have = [models[0].model] if models else []
        if have:
            chosen[vendor] = have
    return chosen


def demo_config(fakes: dict[str, RunningFake], models: dict[str, list[str]],
                db: str) -> dict[str, Any]:
    providers = {}
    for vendor, fake in fakes.items():
        wire = DEMO_VENDORS[vendor][0]
        base = f"{fake.base_url}/v1" if wire == "openai" else fake.base_url
        providers[vendor] = {"base_url": base, "api_key": _KEY}
    cheap = [models["deepseek"][0], models["openai"][0]] if "deepseek" in models else []
    return {"providers": providers, "ledger": {"path": db},
            "aliases": {"cheap": cheap} if cheap else {}}


def workload(models: dict[str, list[str]], n: int) -> list[dict[str, Any]]:
    names = [m for ms in models.values() for m in ms]
    shapes = ["plain", "stream", "cached", "tools", "json", "plain", "stream", "cached"]
    jobs: list[dict[str, Any]] = []
    for i in range(n):
        model = "cheap" if i % 10 == 9 else "auto" if i % 10 == 4 else names[i % len(names)]
        shape = shapes[i % len(shapes)]
        msgs: list[dict[str, Any]] = [{"role": "user", "content":
                                       f"Question {i}: summarise why caching saves money."}]
        body: dict[str, Any] = {"model": model, "messages": msgs, "max_tokens": 200}
        if shape == "cached":
            msgs.insert(0, {"role": "system", "content": _LONG_CONTEXT})
        elif shape == "tools":
            msgs[0]["content"] = "What is the weather in Lisbon?"
            body["tools"] = [_WEATHER_TOOL]
        elif shape == "json":
            msgs[0]["content"] = "Rate the sentiment of: 'cheap and good'."
            body["response_format"] = _SCHEMA
        elif shape == "stream":
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        jobs.append(body)
    return jobs


async def _send(client: Any, body: dict[str, Any]) -> tuple[str, str]:
    if body.get("stream"):
        text, cost = "", "?"
        stream = await client.chat.completions.create(**body)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            extra = chunk.model_extra or {}
            if "thrifty" in extra:
                cost = extra["thrifty"]["cost_usd"]
        return text, cost
    r = await client.chat.completions.with_raw_response.create(**body)
    completion = r.parse()
    msg = completion.choices[0].message
    text = msg.content or ", ".join(f"{c.function.name}({c.function.arguments})"
                                    for c in msg.tool_calls or [])
    return text, r.headers["x-thrifty-cost-usd"]


async def run_demo(n: int, db: str | None, *, quiet: bool = False) -> int:
    import asyncio

    from openai import AsyncOpenAI, NotFoundError

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 132))
    tmp = None if db else tempfile.TemporaryDirectory(prefix="thrifty-demo-")
    db_path = db or str(Path(tmp.name if tmp else ".") / "ledger.db")
    models = pick_models()
    fakes: dict[str, RunningFake] = {}
    async with contextlib.AsyncExitStack() as stack:
        for vendor, (wire, latency, tps, _) in DEMO_VENDORS.items():
            fakes[vendor] = await stack.enter_async_context(
                await start_fake(wire, latency_ms=latency, tokens_per_s=tps, api_key=_KEY,
                                 seed=7))
        runtime = resolve(parse_settings(demo_config(fakes, models, db_path), origin="demo"))
        store = SQLiteLedger(db_path)
        gw = Gateway(runtime, ledger=LedgerWriter(store))
        runner = web.AppRunner(build_app(gw))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        if not quiet:
            console.print(f"[bold]thrifty demo[/]: gateway on {base}, fake providers: "
                          + ", ".join(f"{v} ({DEMO_VENDORS[v][0]} wire)" for v in fakes))
        client = AsyncOpenAI(base_url=base, api_key="unused-on-loopback", max_retries=0)
        stack.push_async_callback(client.close)
        t0 = time.monotonic()
        sem = asyncio.Semaphore(8)

        async def one(i: int, body: dict[str, Any]) -> None:
            async with sem:
                text, cost = await _send(client, body)
            if not quiet:
                kind = "stream" if body.get("stream") else "once"
                console.print(f"  {i:>3} {body['model']:<22} {kind:<6} ${cost:<12} "
                              f"{text[:60]!r}", highlight=False, markup=False, no_wrap=True,
                              overflow="ellipsis")

        await asyncio.gather(*(one(i, b) for i, b in enumerate(workload(models, n))))
        try:
            await client.chat.completions.create(model="no-such-model",
                                                 messages=[{"role": "user", "content": "x"}])
        except NotFoundError as exc:
            if not quiet:
                console.print(f"  unknown model -> {exc.status_code}: {exc.message}",
                              highlight=False, markup=False)
        elapsed = time.monotonic() - t0
        assert gw.ledger is not None
        await gw.ledger.flush()
        for by in ("model", "provider"):
            console.print(spend_table(store.spend(by, None), by,
                                      title=f"Spend by {by} (from the ledger)"))
        console.print(f"{n + 1} requests in {elapsed:.1f} s; ledger at {db_path}"
                      + (" (temporary)" if tmp else ""))
    console.print()
    await show_savings(console)
    if tmp:
        tmp.cleanup()
    return 0
