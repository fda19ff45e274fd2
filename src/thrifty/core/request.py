"""A chat request once ingress has validated it: the OpenAI-shaped body plus what the
gateway read out of it. The OpenAI chat-completions schema is thrifty's lingua franca: every
adapter maps from it, so the common case (an OpenAI-compatible upstream) costs no translation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RequestOptions:
    """The ``thrifty`` extension object of a request body (or its x-thrifty-* headers)."""

    metadata: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    timeout_s: float | None = None
    quality_floor: float | None = None
    """Routing: the lowest predicted quality (0-1) a learned route may accept."""
    max_cost_usd: float | None = None
    """Routing: models expected to cost more than this for the request are excluded."""
    latency_budget_ms: float | None = None
    policy: str | None = None
    """Routing: use this policy (or route) instead of the route's own."""
    fallbacks: tuple[str, ...] = ()
    """Models to try, in order, when every deployment of the routed model failed."""


@dataclass(slots=True)
class ChatRequest:
    body: dict[str, Any]
    """OpenAI chat-completions body, validated, with the ``thrifty`` extension removed."""
    model: str
    stream: bool
    include_usage: bool
    """The client asked for the final usage chunk (``stream_options.include_usage``)."""
    request_id: str
    user: str | None = None
    key_id: str | None = None
    team: str | None = None
    """The team of the virtual key that made the request (budgets, spend by team)."""
    key_limits: tuple[object, ...] = ()
    """The virtual key's own budgets (``limits.rules.LimitRule``s scoped to the key)."""
    options: RequestOptions = field(default_factory=RequestOptions)

    @property
    def max_output_tokens(self) -> int | None:
        value = self.body.get("max_completion_tokens") or self.body.get("max_tokens")
        return value if isinstance(value, int) else None
