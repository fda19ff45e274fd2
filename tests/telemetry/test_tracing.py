"""OpenTelemetry spans written from finished requests: one per request, one child per
upstream attempt, GenAI semantic-convention attributes, times placed on the request's
timeline; and the fix-it message when tracing is on without the SDK."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import Fakes, GatewayFactory, standard_config
from thrifty.config.telemetry import TracingConfig
from thrifty.core.usage import Usage
from thrifty.errors import ConfigError
from thrifty.telemetry.tracing import SpanWriter, require_sdk, tracer_provider

from .outcomes import STARTED, failed, finished, ok, targets


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def writer(exporter: InMemorySpanExporter) -> SpanWriter:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return SpanWriter(provider.get_tracer("test"), {"openai": "openai", "gemini": "gemini"})


def test_a_fallback_is_one_request_span_with_a_child_per_attempt(
        exporter: InMemorySpanExporter) -> None:
    t = targets()
    usage = Usage(input_tokens=120, output_tokens=30, cached_input_tokens=64)
    calls = [failed(t["mini"], 503, "upstream_unavailable", offset=2.0, latency=10.0),
             ok(t["flash"], offset=15.0, latency=80.0, usage=usage)]
    o, e = finished(calls, latency_ms=97.0, route="alias:sturdy;fallback", model="sturdy",
                    body={"model": "sturdy", "messages": [], "max_tokens": 64,
                          "temperature": 0.2})
    writer(exporter).request_done(o, e)
    spans = exporter.get_finished_spans()
    [root] = [s for s in spans if s.parent is None]
    children = sorted((s for s in spans if s.parent is not None), key=lambda s: s.start_time)
    assert len(children) == 2
    assert all(c.parent.span_id == root.context.span_id for c in children)
    assert root.name == "chat sturdy" and root.kind is SpanKind.SERVER
    a = root.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "sturdy"
    assert a["gen_ai.response.model"] == "gemini-2.5-flash"
    assert a["gen_ai.provider.name"] == "gcp.gemini"
    assert a["gen_ai.usage.input_tokens"] == 120 and a["gen_ai.usage.output_tokens"] == 30
    assert a["gen_ai.usage.cache_read.input_tokens"] == 64
    assert a["gen_ai.request.max_tokens"] == 64 and a["gen_ai.request.temperature"] == 0.2
    assert a["thrifty.cost_usd"] == pytest.approx(e.cost_nano_usd / 1e9)
    bad, good = children
    assert bad.kind is SpanKind.CLIENT and bad.status.status_code is StatusCode.ERROR
    assert bad.attributes["error.type"] == "upstream_unavailable"
    assert bad.attributes["gen_ai.provider.name"] == "openai"
    assert good.attributes["gen_ai.request.model"] == "gemini-2.5-flash"
    assert good.attributes["gen_ai.usage.input_tokens"] == 120
    # times: the request from its arrival, each call at its offset, within the request
    t0 = int(STARTED * 1e9)
    assert root.start_time == t0 and root.end_time == t0 + 97_000_000
    assert bad.start_time == t0 + 2_000_000 and bad.end_time == t0 + 12_000_000
    assert good.start_time == t0 + 15_000_000 and good.end_time == t0 + 95_000_000


def test_a_refused_request_is_one_error_span(exporter: InMemorySpanExporter) -> None:
    o, e = finished([], status=429, error="budget_exceeded", route=None)
    writer(exporter).request_done(o, e)
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "budget_exceeded"
    assert "gen_ai.usage.input_tokens" not in span.attributes


def test_stream_spans_carry_time_to_first_chunk(exporter: InMemorySpanExporter) -> None:
    t = targets()
    call = ok(t["mini"], offset=1.0, latency=2000.0, first_byte=40.0)
    writer(exporter).request_done(*finished([call], stream=True, latency_ms=2001.0,
                                            ttft_ms=42.0))
    root = next(s for s in exporter.get_finished_spans() if s.parent is None)
    assert root.attributes["gen_ai.request.stream"] is True
    assert root.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.042)


def test_tracing_without_the_sdk_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_sdk(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry.sdk") or name.startswith("opentelemetry.exporter"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sdk)
    with pytest.raises(ConfigError, match=r"pip install 'thrifty\[otel\]'"):
        require_sdk()
    with pytest.raises(ConfigError, match=r"telemetry\.tracing\.enabled"):
        tracer_provider(TracingConfig(enabled=True))


async def test_tracing_through_the_server(fakes: Fakes, gateway_factory: GatewayFactory,
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()

    def in_memory(cfg: TracingConfig) -> TracerProvider:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider

    monkeypatch.setattr("thrifty.telemetry.tracing.tracer_provider", in_memory)
    cfg = standard_config(fakes, tmp_path / "ledger.db")
    cfg["telemetry"] = {"tracing": {"enabled": True}}
    gw = await gateway_factory(cfg)
    async with aiohttp.ClientSession() as s, s.post(f"{gw.v1}/chat/completions", json={
            "model": "an-haiku", "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.status == 200
        rid = r.headers["x-thrifty-request-id"]
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    root = next(s for s in spans if s.parent is None)
    assert root.attributes["thrifty.request_id"] == rid
    assert root.attributes["gen_ai.provider.name"] == "anthropic"
    assert root.attributes["gen_ai.usage.output_tokens"] > 0
