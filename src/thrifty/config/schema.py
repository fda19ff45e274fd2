"""The config file's shape, strict: unknown keys are errors, secrets are env references.

    server:    {host, port, workers, max_body_bytes, master_key}
    providers: {name: {vendor, base_url, api_key, api_version, headers}}
    models:    {public name: {provider, model, deployment, price, context_window, ...}}
    aliases:   {alias: [model, ...]}        # first is the primary, the rest its fallbacks
    ledger:    {backend, path}
    pricing:   {catalogs: [file, ...]}
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


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


class ProviderConfig(Strict):
    vendor: str | None = None
    """A vendor from providers/vendors.py; defaults to the provider's own name."""
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class PriceConfig(Strict):
    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(default=None, ge=0)
    cache_write: Decimal | None = Field(default=None, ge=0)


class ModelConfig(Strict):
    provider: str
    model: str | None = None
    """Upstream model id; defaults to the public name."""
    deployment: str | None = None
    price: PriceConfig | Literal[0] | None = None
    """Overrides the catalog; ``0`` declares a free (self-hosted) model."""
    context_window: int | None = Field(default=None, gt=0)
    max_output: int | None = Field(default=None, gt=0)
    capabilities: list[str] | None = None


class LedgerConfig(Strict):
    backend: Literal["sqlite", "none"] = "sqlite"
    path: str = "thrifty.db"


class PricingConfig(Strict):
    catalogs: list[str] = Field(default_factory=list)


class Settings(Strict):
    server: ServerConfig = Field(default_factory=lambda: ServerConfig())
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    aliases: dict[str, list[str]] = Field(default_factory=dict)
    ledger: LedgerConfig = Field(default_factory=lambda: LedgerConfig())
    pricing: PricingConfig = Field(default_factory=lambda: PricingConfig())

    @field_validator("aliases")
    @classmethod
    def _aliases_not_empty(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, targets in value.items():
            if not targets:
                raise ValueError(f"alias {name!r} lists no models; give at least one")
        return value
