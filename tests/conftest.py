"""Shared fixtures: fake providers of each wire over real HTTP, and a running gateway (the
real app, the fast path in front of aiohttp, on an ephemeral 127.0.0.1 port) configured
against them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from thrifty.config.load import parse_settings
from thrifty.config.resolve import resolve
from thrifty.engine.gateway import Gateway
from thrifty.fake import RunningFake, start_fake
from thrifty.ledger.sqlite import SQLiteLedger
from thrifty.ledger.writer import LedgerWriter
from thrifty.server.app import build_app
from thrifty.server.run import bind
from thrifty.server.serving import GatewayRunner, start_site

FAKE_KEYS = {"openai": "sk-fake-openai-0123456789", "anthropic": "sk-ant-fake-0123456789",
             "gemini": "AIzaFakeGeminiKey0123456789"}


@dataclass
class Fakes:
    openai: RunningFake
    anthropic: RunningFake
    gemini: RunningFake


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    oa = await start_fake("openai", api_key=FAKE_KEYS["openai"], timeout_hang_s=5)
    an = await start_fake("anthropic", api_key=FAKE_KEYS["anthropic"], timeout_hang_s=5)
    ge = await start_fake("gemini", api_key=FAKE_KEYS["gemini"], timeout_hang_s=5)
    try:
        yield Fakes(oa, an, ge)
    finally:
        for f in (oa, an, ge):
            await f.close()


def standard_config(f: Fakes, db: Path) -> dict[str, Any]:
    """One provider per wire, priced models, and an alias with a fallback."""
    return {
        "providers": {
            "openai": {"base_url": f"{f.openai.base_url}/v1", "api_key": FAKE_KEYS["openai"]},
            "anthropic": {"base_url": f.anthropic.base_url, "api_key": FAKE_KEYS["anthropic"]},
            "gemini": {"base_url": f.gemini.base_url, "api_key": FAKE_KEYS["gemini"]},
        },
        "models": {
            "oa-mini": {"provider": "openai", "model": "gpt-4o-mini",
                        "price": {"input": "0.15", "output": "0.60", "cached_input": "0.075"}},
            "oa-o3": {"provider": "openai", "model": "o3-mini",
                      "price": {"input": "1.10", "output": "4.40", "cached_input": "0.55"}},
            "an-haiku": {"provider": "anthropic", "model": "claude-haiku-4-5",
                         "price": {"input": "0.80", "output": "4.00", "cached_input": "0.08",
                                   "cache_write": "1.00"}},
            "ge-flash": {"provider": "gemini", "model": "gemini-2.5-flash",
                         "price": {"input": "0.10", "output": "0.40",
                                   "cached_input": "0.025"}},
        },
        "aliases": {"cheap": ["oa-mini", "an-haiku"]},
        "ledger": {"path": str(db)},
    }


@dataclass
class RunningGateway:
    base_url: str
    gateway: Gateway
    db: Path
    runner: GatewayRunner | None = None

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"

    async def ledger_rows(self) -> list[dict[str, Any]]:
        assert self.gateway.ledger is not None
        await self.gateway.ledger.flush()
        import sqlite3

        con = sqlite3.connect(self.db)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute("SELECT * FROM requests ORDER BY ts")]
        finally:
            con.close()

    async def ledger_rows_soon(self, count: int = 1, within_s: float = 4.0,
                               ) -> list[dict[str, Any]]:
        """The rows once there are ``count`` of them (a client that left is accounted a
        moment later), or what there is after ``within_s``."""
        import asyncio

        rows = await self.ledger_rows()
        for _ in range(int(within_s / 0.02)):
            if len(rows) >= count:
                break
            await asyncio.sleep(0.02)
            rows = await self.ledger_rows()
        return rows


GatewayFactory = Callable[[dict[str, Any]], Awaitable[RunningGateway]]


async def serve_gateway(config: dict[str, Any], default_db: Path) -> RunningGateway:
    """A gateway served as `thrifty serve` serves it (the fast path in front of aiohttp) on
    an ephemeral port; stop it with ``await gw.runner.cleanup()``."""
    runtime = resolve(parse_settings(config, origin="test"))
    db = Path(config.get("ledger", {}).get("path", default_db))
    gw = Gateway(runtime, ledger=LedgerWriter(SQLiteLedger(str(db))))
    sock = bind("127.0.0.1", 0)
    runner = await start_site(build_app(gw), sock, fast_path=runtime.settings.server.fast_path)
    return RunningGateway(f"http://127.0.0.1:{sock.getsockname()[1]}", gw, db, runner)


@pytest.fixture
async def gateway_factory(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    runners: list[GatewayRunner] = []

    async def make(config: dict[str, Any]) -> RunningGateway:
        gw = await serve_gateway(config, tmp_path / "ledger.db")
        assert gw.runner is not None
        runners.append(gw.runner)
        return gw

    yield make
    for r in runners:
        await r.cleanup()


_openai_clients: list[Any] = []


@pytest.fixture(autouse=True)
async def _close_openai_clients() -> AsyncIterator[None]:
    yield
    while _openai_clients:
        await _openai_clients.pop().close()


def openai_client(gw: RunningGateway, **kw: Any) -> Any:
    """An AsyncOpenAI client on the gateway (no retries: tests see every failure), closed
    after the test."""
    from openai import AsyncOpenAI

    c = AsyncOpenAI(base_url=gw.v1, api_key="unused", max_retries=0, **kw)
    _openai_clients.append(c)
    return c


@pytest.fixture
async def gw(fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> RunningGateway:
    return await gateway_factory(standard_config(fakes, tmp_path / "ledger.db"))
