"""Drift webhooks over real HTTP on 127.0.0.1: alerts and clears are delivered in the
background with the configured (secret) headers; a full queue drops instead of blocking;
a failing webhook is retried once and logged without its URL or headers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.drift.test_monitor import feed, ok_call, outcome, refusing
from thrifty.config.drift import DriftConfig
from thrifty.config.load import load_settings
from thrifty.core.clock import FakeClock
from thrifty.drift.monitor import build_monitor
from thrifty.drift.webhook import WebhookSender

SECRET = "hook-secret-0123456789"


@dataclass
class Hook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    status: int = 200
    gate: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook("")
    h.gate.set()

    async def receive(request: web.Request) -> web.Response:
        await h.gate.wait()
        h.received.append(orjson.loads(await request.read()))
        h.auth.append(request.headers.get("authorization"))
        return web.Response(status=h.status)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    h.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield h
    await runner.cleanup()


async def test_alert_and_clear_are_posted_with_env_secret_headers(
        hook: Hook, tmp_path: Any) -> None:
    path = tmp_path / "thrifty.yaml"
    path.write_text("ledger: {backend: none}\n"
                    f"drift: {{webhook: {{url: '{hook.url}', headers: "
                    "{authorization: 'Bearer ${HOOK_TOKEN}'}}}\n")
    cfg = load_settings(path, env={"HOOK_TOKEN": SECRET}).drift
    assert SECRET not in repr(cfg)
    m = build_monitor(cfg, FakeClock())
    assert m is not None
    feed(m, outcome([ok_call()]), 120)
    feed(m, refusing(), 20)
    [alert] = m.alerts()
    m.clear(alert.id)
    await m.close()  # delivers what is queued
    assert [r["event"] for r in hook.received] == ["drift.alert", "drift.cleared"]
    assert hook.received[0]["alert"]["id"] == alert.id
    assert hook.received[1]["alert"]["cleared_at"] is not None
    assert hook.auth == [f"Bearer {SECRET}"] * 2


async def test_a_full_queue_drops_instead_of_blocking(hook: Hook) -> None:
    hook.gate.clear()  # the webhook hangs
    sender = WebhookSender(hook.url, {}, timeout_s=5, queue_size=2)
    sent = [sender.send({"n": i}) for i in range(5)]
    # one is taken by the sender task as soon as it runs; here none is yet
    assert sent == [True, True, False, False, False] and sender.dropped == 3
    hook.gate.set()
    await sender.close()
    assert [r["n"] for r in hook.received] == [0, 1]


async def test_a_failing_webhook_is_retried_then_logged_without_secrets(
        hook: Hook, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("thrifty.drift.webhook._RETRY_AFTER_S", 0.0)
    hook.status = 503
    sender = WebhookSender(hook.url + "?token=" + SECRET, {"authorization": SECRET})
    with caplog.at_level(logging.WARNING, logger="thrifty.drift"):
        sender.send({"n": 1})
        await sender.close()
    assert len(hook.received) == 2 and sender.failed == 1 and sender.sent == 0
    assert "HTTP 503" in caplog.text and SECRET not in caplog.text


async def test_monitor_without_a_webhook_closes_cleanly() -> None:
    m = build_monitor(DriftConfig(), FakeClock())
    assert m is not None and m.webhook is None
    await m.close()
