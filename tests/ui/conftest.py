"""A running gateway with a master key, virtual keys and a seeded ledger, for the dashboard
tests: the real aiohttp app on an ephemeral 127.0.0.1 port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from thrifty.config.load import parse_settings
from thrifty.config.resolve import resolve
from thrifty.engine.gateway import Gateway
from thrifty.keys.sqlite_keys import SQLiteKeys
from thrifty.ledger.entry import AttemptRow, LedgerEntry
from thrifty.ledger.sqlite import SQLiteLedger
from thrifty.ledger.writer import LedgerWriter
from thrifty.server.app import build_app

MASTER = "mk-dashboard-test-0123456789"
TEAMS = ("search", "research", "support")


@dataclass
class Dash:
    url: str
    read_key: str
    read_key_id: str
    inference_key: str
    keys: SQLiteKeys


def seeded_rows(now: float) -> list[LedgerEntry]:
    """Three days of traffic ending an hour ago: two models, three teams, some errors."""
    rows = []
    for i in range(120):
        team = TEAMS[i % 3]
        big = i % 4 == 0
        model = ("anthropic", "claude-sonnet-4-6") if big else ("openai", "gpt-4o-mini")
        cost = (5_000_000 if big else 300_000) * (1 + TEAMS.index(team))
        status = 502 if i % 10 == 9 else 200
        rows.append(LedgerEntry(
            f"thr-ui-{i:04d}", now - 3600 - i * 1800, "smart", *model, status,
            stream=i % 2 == 0, key_id=f"key_{team}", team=team, input_tokens=1_000,
            output_tokens=400, cost_nano_usd=cost if status == 200 else 0,
            latency_ms=200.0 + 37 * i, ttft_ms=40.0 + i if i % 2 == 0 else None,
            route="smart;cascade", calls=1,
            attempts=(AttemptRow(0, 0, model[0], model[1], status, cost_nano_usd=cost,
                                 input_tokens=1_000, output_tokens=400,
                                 verdict="accepted" if status == 200 else None),)))
    return rows


@pytest.fixture
async def dash(tmp_path: Path) -> AsyncIterator[Dash]:
    db = tmp_path / "thrifty.db"
    with SQLiteLedger(str(db)) as store:
        store.write_batch(seeded_rows(time.time()))
    keys = SQLiteKeys(str(db))
    read, read_secret = await keys.create("ops", name="dashboard", role="read")
    _, inference_secret = await keys.create("search", name="app")
    config = {
        "server": {"master_key": MASTER},
        "keys": {"backend": "sqlite", "path": str(db)},
        "ledger": {"path": str(db)},
        "limits": {"rules": [{"resource": "usd", "window": "month", "scope": "team",
                              "value": "*", "amount": "5"}]},
    }
    runtime = resolve(parse_settings(config, origin="test"))
    gw = Gateway(runtime, ledger=LedgerWriter(SQLiteLedger(str(db))))
    runner = web.AppRunner(build_app(gw))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Dash(f"http://127.0.0.1:{port}", read_secret, read.id, inference_secret, keys)
    finally:
        await runner.cleanup()
        await keys.close()
