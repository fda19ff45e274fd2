"""Accounting: price a finished request and turn it into a ledger row and the response's
cost extension. Pure: no I/O; the gateway hands the row to the ledger writer.

When a provider never reported usage (a stream cut before its usage event, a vendor that
ignores ``stream_options``), usage is estimated from characters and flagged, so traffic is
never silently priced at $0."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from thrifty.core.request import ChatRequest
from thrifty.core.usage import Usage
from thrifty.ledger.entry import LedgerEntry
from thrifty.pricing.cost import compute_cost, format_usd, to_nano_usd
from thrifty.providers.base import Target

_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_IMAGE = 85


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """A deliberately simple estimate (about 4 characters a token, like cl100k on English)."""
    chars = 0
    tokens = 0
    for msg in body.get("messages") or ():
        tokens += _TOKENS_PER_MESSAGE
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    if part.get("type") == "text":
                        chars += len(str(part.get("text", "")))
                    else:
                        tokens += _TOKENS_PER_IMAGE
    return tokens + chars // _CHARS_PER_TOKEN


def estimate_usage(req: ChatRequest, output_chars: int) -> Usage:
    return Usage(
        input_tokens=estimate_prompt_tokens(req.body),
        output_tokens=(output_chars + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN,
    )


@dataclass(slots=True)
class Outcome:
    """What happened to one request, as the gateway saw it."""

    req: ChatRequest
    started: float
    """Wall-clock arrival time."""
    status: int
    target: Target | None = None
    usage: Usage | None = None
    usage_estimated: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    error_code: str | None = None
    route: str | None = None

    @property
    def cost(self) -> Decimal:
        if self.usage is None or self.target is None:
            return Decimal(0)
        return compute_cost(self.usage, self.target.info.price)


def ledger_entry(o: Outcome) -> LedgerEntry:
    u = o.usage or Usage()
    t = o.target
    return LedgerEntry(
        request_id=o.req.request_id,
        ts=o.started,
        requested_model=o.req.model,
        provider=t.provider if t else None,
        upstream_model=t.upstream_model if t else None,
        status=o.status,
        stream=o.req.stream,
        key_id=o.req.key_id,
        user=o.req.user,
        input_tokens=u.input_tokens,
        cached_input_tokens=u.cached_input_tokens,
        cache_write_tokens=u.cache_write_tokens,
        output_tokens=u.output_tokens,
        reasoning_tokens=u.reasoning_tokens,
        cost_nano_usd=to_nano_usd(o.cost),
        latency_ms=o.latency_ms,
        ttft_ms=o.ttft_ms,
        error_type=o.error_code,
        route=o.route,
        usage_known=o.usage is not None and not o.usage_estimated,
    )


def cost_extension(o: Outcome) -> dict[str, Any]:
    """The ``thrifty`` object added to responses and to the final usage chunk."""
    ext: dict[str, Any] = {
        "request_id": o.req.request_id,
        "provider": o.target.provider if o.target else None,
        "model": o.target.upstream_model if o.target else None,
        "cost_usd": format_usd(o.cost),
    }
    if o.usage_estimated:
        ext["usage_estimated"] = True
    return ext
