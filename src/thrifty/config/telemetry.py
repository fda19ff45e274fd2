"""The ``telemetry:`` config section: Prometheus metrics, OpenTelemetry traces, logs.

    telemetry:
      metrics: {enabled: true, public_on_loopback: false,
                labels: {route: true, team: true, key: false, max_values: 100}}
      tracing: {enabled: false, exporter: otlp, endpoint: null, service_name: thrifty}
      logs:    {format: text, level: info, access_log: false,
                log_bodies: false, log_bodies_keys: [key_...]}

Shape only; ``thrifty.telemetry`` turns it into observers, a /metrics route and handlers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    # config.schema's Strict, repeated: schema imports this module, not the other way
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricLabels(_Strict):
    """Which per-caller labels the request, token and cost series carry. Provider and model
    are always labels (the config bounds them); the rest can grow with traffic, so each
    label keeps at most ``max_values`` distinct values and files the rest under ``other``."""

    route: bool = True
    team: bool = True
    key: bool = False
    """Off by default: one series per virtual key multiplies every series by the key count."""
    max_values: int = Field(default=100, ge=1, le=10_000)


class MetricsConfig(_Strict):
    enabled: bool = True
    public_on_loopback: bool = False
    """Serve ``/metrics`` without the master key to clients connecting from 127.0.0.1/::1
    (a scraper on the same host). Remote scrapers always send the master key."""
    labels: MetricLabels = Field(default_factory=lambda: MetricLabels())


class TracingConfig(_Strict):
    enabled: bool = False
    """Needs ``pip install 'thrifty[otel]'``."""
    exporter: Literal["otlp", "console"] = "otlp"
    endpoint: str | None = None
    """OTLP/HTTP traces endpoint; default ``$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
    ``http://127.0.0.1:4318/v1/traces``."""
    service_name: str = "thrifty"


class LogsConfig(_Strict):
    format: Literal["json", "text"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    """One line per request (id, model, provider, status, latency, cost)."""
    log_bodies: bool = False
    """Log every request's prompt and completion. Off by default: bodies hold user data."""
    log_bodies_keys: list[str] = Field(default_factory=list)
    """Virtual key ids whose bodies are logged even when ``log_bodies`` is off."""


class TelemetryConfig(_Strict):
    metrics: MetricsConfig = Field(default_factory=lambda: MetricsConfig())
    tracing: TracingConfig = Field(default_factory=lambda: TracingConfig())
    logs: LogsConfig = Field(default_factory=lambda: LogsConfig())
