"""The ``drift:`` config section: behaviour-change detection per deployment from live
traffic. Shape only (strict, like the rest of the schema); ``thrifty.drift`` turns it into
detectors. Detection is on by default (~15 us per judged request, and at most
``max_samples_per_s`` requests judged per deployment); demoting a drifting model in routing
is off until an operator opts in.

    drift:
      demote: true                      # route around a drifting model until it is cleared
      webhook: {url: https://hooks.example/drift,
                headers: {authorization: "Bearer ${DRIFT_HOOK_TOKEN}"}}
      signals: {latency_ms: {threshold: 12, min_change: 0.5}, refusal_rate: {enabled: false}}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

SignalName = Literal["latency_ms", "error_rate", "output_tokens", "refusal_rate",
                     "json_validity", "cascade_acceptance"]
Direction = Literal["up", "down", "both"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalConfig(_Strict):
    """Overrides of one signal's defaults (see ``thrifty.drift.signals.DEFAULTS``); a field
    left out keeps the default."""

    enabled: bool | None = None
    warmup: int | None = Field(default=None, ge=5, le=100_000)
    """Samples that set the baseline before anything is judged."""
    threshold: float | None = Field(default=None, gt=0)
    """How much evidence (summed standard deviations beyond ``slack``) raises an alert:
    higher means fewer false alarms and slower detection."""
    slack: float | None = Field(default=None, ge=0)
    """Shifts smaller than this many baseline standard deviations are ignored."""
    min_change: float | None = Field(default=None, ge=0)
    """The smallest shift worth an alert: relative for latency and output tokens (0.3 is
    30%), absolute for rates (0.1 is ten points)."""
    direction: Direction | None = None


class WebhookConfig(_Strict):
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Sent with every POST; put secrets in env references (``${DRIFT_HOOK_TOKEN}``)."""
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    queue_size: int = Field(default=100, ge=1, le=10_000)
    """Alerts waiting to be sent; beyond it new ones are dropped (and logged)."""


class DriftConfig(_Strict):
    enabled: bool = True
    detector: Literal["cusum", "page-hinkley"] = "cusum"
    demote: bool = False
    """Exclude a model with an open drift alert from routing (unless nothing else can
    serve) until an operator clears the alert."""
    webhook: WebhookConfig | None = None
    signals: dict[SignalName, SignalConfig] = Field(default_factory=dict)
    max_models: int = Field(default=1000, ge=1)
    """Deployments tracked at most (bounds memory); later ones are not watched."""
    keep_cleared: int = Field(default=500, ge=0)
    """Cleared alerts kept for the API and dashboard."""
    max_samples_per_s: float | None = Field(default=100.0, gt=0)
    """Requests judged per second per deployment, at most (a token bucket holding one
    second's worth); the rest are not looked at. Detection needs tens of samples, so under
    heavy traffic it is still as quick in seconds while its cost per request falls towards
    zero. None judges every request."""
