"""One ledger row. Money is integer nano-dollars (see ``pricing.cost``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One upstream call of a request (a retry, a fallback, a cascade tier, a hedge), with
    its own price: the request row's cost is the sum of its attempts'."""

    n: int
    tier: int
    provider: str
    upstream_model: str
    status: int
    error_type: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nano_usd: int = 0
    latency_ms: float = 0.0
    verdict: str | None = None
    usage_known: bool = True


@dataclass(slots=True)
class LedgerEntry:
    request_id: str
    ts: float
    """Unix seconds when the request arrived."""
    requested_model: str
    provider: str | None
    upstream_model: str | None
    status: int
    """HTTP status returned to the client (499 when the client went away)."""
    stream: bool = False
    key_id: str | None = None
    team: str | None = None
    tags: str | None = None
    """The request's tags as a JSON array (``thrifty.tags``), for spend by tag."""
    user: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nano_usd: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    error_type: str | None = None
    """The error tree's ``code`` (``upstream_timeout``, ``rate_limit_exceeded``, ...)."""
    route: str | None = None
    """How the request was routed, in short (the x-thrifty-route header's value)."""
    usage_known: bool = True
    """False when the upstream never reported usage (e.g. a stream cut before its end)."""
    trace: str | None = None
    """The decision trace as JSON: the plan, every upstream call with its cost, and each
    cascade tier's checks and escalation reason."""
    calls: int = 1
    """Upstream calls made for this request (fallback attempts and cascade tiers)."""
    attempts: tuple[AttemptRow, ...] = field(default=())
    """Every upstream call, stored as rows of the ``attempts`` table (not a column)."""
