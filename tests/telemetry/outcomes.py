"""Finished requests made by hand (no server): the Outcome and ledger row an observer is
told of, for unit tests of metrics, traces and logs."""

from __future__ import annotations

from typing import Any

from thrifty.config.load import parse_settings
from thrifty.config.resolve import resolve
from thrifty.core.request import ChatRequest
from thrifty.core.usage import Usage
from thrifty.engine.account import Outcome, ledger_entry
from thrifty.engine.calls import Call
from thrifty.ledger.entry import LedgerEntry
from thrifty.providers.base import Target

CONFIG: dict[str, Any] = {
    "providers": {"openai": {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-test-000000"},
                  "anthropic": {"base_url": "http://127.0.0.1:9", "api_key": "sk-test-000001"},
                  "gemini": {"base_url": "http://127.0.0.1:9", "api_key": "AIzaTest0000000000"}},
    "models": {"mini": {"provider": "openai", "model": "gpt-4o-mini",
                        "price": {"input": "0.15", "output": "0.60", "cached_input": "0.075"}},
               "haiku": {"provider": "anthropic", "model": "claude-haiku-4-5",
                         "price": {"input": "0.80", "output": "4.00"}},
               "flash": {"provider": "gemini", "model": "gemini-2.5-flash",
                         "price": {"input": "0.10", "output": "0.40"}}},
    "ledger": {"backend": "none"},
}
STARTED = 1_700_000_000.0


def targets() -> dict[str, Target]:
    routes = resolve(parse_settings(CONFIG, origin="test")).routes
    return {name: routes.resolve(name).targets[0] for name in ("mini", "haiku", "flash")}


def finished(calls: list[Call], *, stream: bool = False, status: int = 200,
             route: str | None = "direct", latency_ms: float = 100.0,
             ttft_ms: float | None = None, error: str | None = None, mode: str = "fallback",
             team: str | None = None, key_id: str | None = None, model: str = "mini",
             body: dict[str, Any] | None = None) -> tuple[Outcome, LedgerEntry]:
    req = ChatRequest(body=body or {"model": model, "messages": []}, model=model,
                      stream=stream, include_usage=stream, request_id="thr-test-1",
                      key_id=key_id, team=team)
    accepted = next((c for c in reversed(calls) if c.status < 400), None)
    o = Outcome(req, STARTED, status=status, route=route, calls=calls, accepted=accepted,
                latency_ms=latency_ms,
                ttft_ms=ttft_ms if ttft_ms is not None or stream or status >= 400
                else latency_ms,
                error_code=error)
    if calls:
        o.trace.plan = {"mode": mode}
    return o, ledger_entry(o)


def ok(target: Target, *, offset: float = 1.0, latency: float = 90.0,
       first_byte: float | None = None, usage: Usage | None = None, tier: int = 0,
       verdict: str | None = None) -> Call:
    return Call(target, tier, usage=usage or Usage(input_tokens=100, output_tokens=20),
                latency_ms=latency, first_byte_ms=latency if first_byte is None else first_byte,
                offset_ms=offset, verdict=verdict)


def failed(target: Target, status: int, code: str, *, offset: float = 1.0,
           latency: float = 10.0) -> Call:
    return Call(target, 0, status=status, error_code=code, latency_ms=latency, offset_ms=offset)
