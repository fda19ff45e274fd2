"""The config file's shape, strict: unknown keys are errors, secrets are env references.

    server:    {host, port, workers, max_body_bytes, master_key}
    providers: {name: {vendor, base_url, api_key, api_version, headers}}
    models:    {public name: {provider, model, deployment, price, context_window, ...}}
    aliases:   {alias: [model, ...]}        # first is the primary, the rest its fallbacks
               {alias: {policy, models, tiers, rules, router, constraints, ...}}
    ledger:    {backend: sqlite | postgres | none, path, dsn, pg_schema}
    pricing:   {catalogs: [file, ...]}
    fallbacks: {model: [{on: [rate_limit, ...], to: [model, ...]}]}
    resilience: {retries, health (memory | redis), stream_failover, hedge_after_ms}
    telemetry: {metrics, tracing, logs}   # see config/telemetry.py
    drift:     {enabled, demote, webhook, signals}   # see config/drift.py
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from thrifty.config.drift import DriftConfig
from thrifty.config.telemetry import TelemetryConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    master_key: SecretStr | None = None
    """Defaults to THRIFTY_MASTER_KEY; required when host is not loopback."""
    connect_timeout_s: float = Field(default=10.0, gt=0)
    first_token_timeout_s: float = Field(default=120.0, gt=0)
    request_timeout_s: float = Field(default=600.0, gt=0)
    fast_path: bool = True
    """Serve the API routes (chat completions, models) on the llhttp front, handing other
    connections to aiohttp; false serves everything with aiohttp."""


class ProviderConfig(Strict):
    vendor: str | None = None
    """A vendor from providers/vendors.py; defaults to the provider's own name."""
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    region: str | None = None
    """Data-region tag for routing constraints (``eu``, ``us``)."""


class PriceConfig(Strict):
    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(default=None, ge=0)
    cache_write: Decimal | None = Field(default=None, ge=0)


class DeploymentConfig(Strict):
    """One place that serves a logical model: a provider account (key, region, base URL)
    and the model's id there."""

    provider: str
    model: str | None = None
    """Upstream model id; defaults to the logical model's ``model`` or public name."""
    deployment: str | None = None
    weight: float = Field(default=1.0, gt=0)


class ModelConfig(Strict):
    provider: str | None = None
    """The single provider serving it; or list several under ``deployments``."""
    model: str | None = None
    """Upstream model id; defaults to the public name."""
    deployments: list[DeploymentConfig] = Field(default_factory=list)
    deployment: str | None = None
    hedge: bool = False
    """Race a second deployment when the first is slower than its p95 time to first token."""
    price: PriceConfig | Literal[0] | None = None
    """Overrides the catalog; ``0`` declares a free (self-hosted) model."""
    context_window: int | None = Field(default=None, gt=0)
    max_output: int | None = Field(default=None, gt=0)
    capabilities: list[str] | None = None


PolicyName = Literal["fallback", "weighted", "least-latency", "least-busy", "lowest-cost",
                     "effective-cost", "rules", "cascade", "learned"]


class ConstraintsConfig(Strict):
    providers: list[str] | None = None
    regions: list[str] | None = None
    require: list[str] = Field(default_factory=list)
    """Capabilities every target must have (tools, vision, json_schema, ...)."""


class TierConfig(Strict):
    models: list[str] = Field(default_factory=list)
    """Called together; several models in one tier answer in parallel (for agreement)."""
    any_of: list[str] = Field(default_factory=list)
    """Preference list: the first ``pick`` models of it this gateway serves are used."""
    pick: int = Field(default=1, ge=1)
    checks: list[str | dict[str, object]] = Field(default_factory=list)
    max_answer_usd: float | None = Field(default=None, gt=0)
    """Cascade, final tier: call it only when the answer it is expected to write (the
    earlier answers' median output tokens x its output price) costs at most this; otherwise
    the cascade returns an earlier answer (the ``fallback`` tier's, else the latest)."""
    fallback: bool = False
    """Cascade, early tier: its answer is the one returned when the final tier is over
    its ``max_answer_usd``."""


class RouteConfig(Strict):
    """An alias with a routing policy (``aliases: {auto: {policy: cascade, ...}}``)."""

    policy: PolicyName = "fallback"
    models: list[str] = Field(default_factory=list)
    weights: dict[str, float] = Field(default_factory=dict)
    constraints: ConstraintsConfig = Field(default_factory=lambda: ConstraintsConfig())
    latency_budget_ms: float | None = Field(default=None, gt=0)
    latency_price_usd_per_s: float = Field(default=0.0, ge=0)
    tiers: list[TierConfig] = Field(default_factory=list)
    rules: list[dict[str, object]] = Field(default_factory=list)
    router: str | None = None
    """Learned policy: a directory written by ``thrifty router train``."""
    quality_floor: float | None = Field(default=None, ge=0, le=1)
    lam: float | None = Field(default=None, ge=0)
    """Learned policy: maximise predicted quality - lam x expected USD of the request."""
    threshold: float | None = Field(default=None, ge=0, le=1)
    """Learned policy with a strong/weak pair: strong when its score >= threshold."""
    description: str = ""
    hedge: bool = False
    """Latency-critical: race a second deployment after the first's p95 time to first
    token; the first to answer wins, the other is cancelled, both are billed."""


FallbackReason = Literal["rate_limit", "server_error", "timeout", "connection", "bad_response",
                         "auth", "context_window", "content_policy", "any"]


class FallbackRule(Strict):
    """``{on: [rate_limit, server_error], to: [claude-sonnet-4-6]}``: when every deployment
    of a model failed for one of these reasons, try these models next, in order."""

    on: list[FallbackReason] = Field(default=["any"])
    to: list[str] = Field(min_length=1)


class RetryConfig(Strict):
    max_attempts: int = Field(default=3, ge=1, le=20)
    """Rounds over a model's deployments (each round tries every healthy one)."""
    base_s: float = Field(default=0.25, ge=0)
    max_backoff_s: float = Field(default=8.0, ge=0)


class HealthConfig(Strict):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "thrifty:health:"
    """Key prefix: gateways sharing it share breaker state (one prefix per deployment set)."""
    breaker: dict[str, object] = Field(default_factory=dict)
    """Circuit-breaker settings (see ``resilience.breaker.BreakerConfig``)."""


class ResilienceConfig(Strict):
    retries: RetryConfig = Field(default_factory=lambda: RetryConfig())
    health: HealthConfig = Field(default_factory=lambda: HealthConfig())
    stream_failover: Literal["error", "continue"] = "error"
    """After the first token: end the stream with an error event, or continue on a
    fallback deployment from the text already sent (assistant prefix)."""
    hedge_after_ms: float | None = Field(default=None, gt=0)
    """Hedging: start a second attempt on another deployment when the first has not
    answered after this long (None: off; routes may set ``hedge: true`` to use the
    observed p95 time to first token instead)."""


class KeysConfig(Strict):
    """Virtual keys (``tk-...``). ``none``: only the master key (or no auth on loopback)."""

    backend: Literal["none", "sqlite", "postgres"] = "none"
    path: str = "thrifty.db"
    dsn: str | None = None
    schema_name: str = "public"


class LimitsConfig(Strict):
    """Budgets and rate limits: ``rules`` of resource x window x scope (see
    ``limits.rules.LimitRule``), counted in memory (one process), SQLite (the workers of
    one machine) or Redis (any number of replicas)."""

    backend: Literal["memory", "sqlite", "redis"] = "memory"
    path: str = "thrifty-limits.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "thrifty:limits:"
    rules: list[dict[str, object]] = Field(default_factory=list)
    downgrade_at: float | None = Field(default=None, gt=0, le=1)
    """When a USD budget the request counts against is this full (settled + held), route
    it to cheaper models: a fallback plan is re-ranked cheapest first, a cascade loses its
    final (premium) tier. None: never."""


class LedgerConfig(Strict):
    backend: Literal["sqlite", "postgres", "none"] = "sqlite"
    path: str = "thrifty.db"
    dsn: SecretStr | None = None
    """PostgreSQL: ``postgresql://user:password@host:5432/db`` (an env reference)."""
    pg_schema: str = "public"


class PricingConfig(Strict):
    catalogs: list[str] = Field(default_factory=list)


class Settings(Strict):
    server: ServerConfig = Field(default_factory=lambda: ServerConfig())
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    aliases: dict[str, list[str] | RouteConfig] = Field(default_factory=dict)
    fallbacks: dict[str, list[FallbackRule]] = Field(default_factory=dict)
    resilience: ResilienceConfig = Field(default_factory=lambda: ResilienceConfig())
    keys: KeysConfig = Field(default_factory=lambda: KeysConfig())
    limits: LimitsConfig = Field(default_factory=lambda: LimitsConfig())
    ledger: LedgerConfig = Field(default_factory=lambda: LedgerConfig())
    pricing: PricingConfig = Field(default_factory=lambda: PricingConfig())
    drift: DriftConfig = Field(default_factory=lambda: DriftConfig())
    telemetry: TelemetryConfig = Field(default_factory=lambda: TelemetryConfig())

    @field_validator("aliases")
    @classmethod
    def _aliases_not_empty(
        cls, value: dict[str, list[str] | RouteConfig]
    ) -> dict[str, list[str] | RouteConfig]:
        for name, route in value.items():
            if isinstance(route, list) and not route:
                raise ValueError(f"alias {name!r} lists no models; give at least one")
        return value
