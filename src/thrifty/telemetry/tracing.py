"""OpenTelemetry traces (``pip install 'thrifty[otel]'``): one span per request and one
child span per upstream attempt, with the GenAI semantic-convention attribute names.

Spans are written after the fact, from the observer hook, with explicit start and end
times (the request's arrival plus each call's offset), so the request path carries no
tracing code at all and nothing here runs when tracing is off. The SDK is imported only
when tracing is enabled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from thrifty.config.telemetry import TracingConfig
from thrifty.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from thrifty.engine.account import Outcome
    from thrifty.engine.calls import Call
    from thrifty.ledger.entry import AttemptRow, LedgerEntry

# gen_ai.provider.name values of the semantic conventions, per thrifty vendor
SEMCONV_PROVIDERS = {"azure": "azure.ai.openai", "gemini": "gcp.gemini", "mistral": "mistral_ai",
                     "xai": "x_ai", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}
DEFAULT_ENDPOINT = "http://127.0.0.1:4318/v1/traces"
_OPTIONAL_PARAMS = (("max_tokens", "gen_ai.request.max_tokens"),
                    ("max_completion_tokens", "gen_ai.request.max_tokens"),
                    ("temperature", "gen_ai.request.temperature"),
                    ("top_p", "gen_ai.request.top_p"))


def _missing_extra() -> ConfigError:
    return ConfigError("telemetry.tracing.enabled: tracing needs the OpenTelemetry SDK; "
                       "install it with pip install 'thrifty[otel]', or set "
                       "telemetry.tracing.enabled: false")


def require_sdk() -> None:
    """Raise the fix-it ``ConfigError`` now if the OpenTelemetry SDK is missing."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise _missing_extra() from None


def tracer_provider(cfg: TracingConfig) -> TracerProvider:
    """The SDK provider with the configured exporter (batched, off the request path)."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        raise _missing_extra() from None
    provider = TracerProvider(resource=Resource.create({"service.name": cfg.service_name}))
    if cfg.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        return provider
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise _missing_extra() from None
    import os

    endpoint = (cfg.endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or DEFAULT_ENDPOINT)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


class SpanWriter:
    """Observer: the spans of each finished request.

    ``vendors`` maps configured provider names to vendor names (for gen_ai.provider.name)."""

    def __init__(self, tracer: Tracer, vendors: Mapping[str, str] | None = None) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        self._system = {name: SEMCONV_PROVIDERS.get(v, v) for name, v in (vendors or {}).items()}

    def request_done(self, outcome: Outcome, entry: LedgerEntry) -> None:
        trace, req = self._trace, outcome.req
        start = int(outcome.started * 1e9)
        # a relayed stream's call has its latency stretched to the stream's end (measured
        # from a slightly later origin): its first token is the honest lower bound
        end_ms = max([outcome.latency_ms, *(
            c.offset_ms + (c.latency_ms if c.first_byte_ms is None else c.first_byte_ms)
            for c in outcome.calls)])
        span = self._tracer.start_span(
            f"chat {req.model or 'unknown'}", kind=trace.SpanKind.SERVER, start_time=start,
            attributes=self._request_attributes(outcome, entry))
        ctx = trace.set_span_in_context(span)
        for call, row in zip(outcome.calls, entry.attempts, strict=False):
            child = self._tracer.start_span(
                f"chat {call.target.upstream_model}", context=ctx, kind=trace.SpanKind.CLIENT,
                start_time=start + int(call.offset_ms * 1e6),
                attributes=self._call_attributes(call, row))
            if row.status >= 400:
                child.set_status(trace.Status(trace.StatusCode.ERROR, row.error_type))
            child.end(start + int(min(call.offset_ms + call.latency_ms, end_ms) * 1e6))
        if entry.status >= 400:
            span.set_status(trace.Status(trace.StatusCode.ERROR, entry.error_type))
        span.end(start + int(end_ms * 1e6))

    def _provider(self, name: str) -> str:
        return self._system.get(name) or SEMCONV_PROVIDERS.get(name, name)

    def _request_attributes(self, o: Outcome, e: LedgerEntry) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": e.requested_model,
            "gen_ai.request.stream": e.stream, "http.response.status_code": e.status,
            "thrifty.request_id": e.request_id, "thrifty.calls": e.calls,
            "thrifty.cost_usd": e.cost_nano_usd / 1e9,
        }
        for param, name in _OPTIONAL_PARAMS:
            value = o.req.body.get(param)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attrs[name] = value
        if e.provider:
            attrs["gen_ai.provider.name"] = attrs["gen_ai.system"] = self._provider(e.provider)
            attrs["gen_ai.response.model"] = e.upstream_model
        if o.calls:
            _usage(attrs, e.input_tokens, e.output_tokens, e.cached_input_tokens,
                   e.cache_write_tokens, e.reasoning_tokens)
        if o.ttft_ms is not None and e.stream:
            attrs["gen_ai.response.time_to_first_chunk"] = o.ttft_ms / 1000
        for key, value in (("thrifty.route", e.route), ("thrifty.key_id", e.key_id),
                           ("thrifty.team", e.team), ("error.type", e.error_type)):
            if value:
                attrs[key] = value
        return attrs

    def _call_attributes(self, c: Call, a: AttemptRow) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self._provider(a.provider),
            "gen_ai.system": self._provider(a.provider),
            "gen_ai.request.model": a.upstream_model, "gen_ai.response.model": a.upstream_model,
            "thrifty.tier": a.tier, "thrifty.status": a.status,
            "thrifty.cost_usd": a.cost_nano_usd / 1e9,
            "thrifty.deployment": c.target.key,
        }
        if a.usage_known or a.input_tokens or a.output_tokens:
            _usage(attrs, a.input_tokens, a.output_tokens, a.cached_input_tokens,
                   a.cache_write_tokens, a.reasoning_tokens)
        if a.verdict:
            attrs["thrifty.verdict"] = a.verdict
        if a.error_type:
            attrs["error.type"] = a.error_type
        if c.first_byte_ms is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = c.first_byte_ms / 1000
        return attrs


def _usage(attrs: dict[str, Any], inp: int, out: int, cached: int, written: int,
           reasoning: int) -> None:
    attrs["gen_ai.usage.input_tokens"] = inp
    attrs["gen_ai.usage.output_tokens"] = out
    if cached:
        attrs["gen_ai.usage.cache_read.input_tokens"] = cached
    if written:
        attrs["gen_ai.usage.cache_creation.input_tokens"] = written
    if reasoning:
        attrs["gen_ai.usage.reasoning.output_tokens"] = reasoning
