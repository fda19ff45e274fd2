"""Accounting: price a finished request and turn it into a ledger row and the response's
cost extension. Pure: no I/O; the gateway hands the row to the ledger writer.

When a provider never reported usage (a stream cut before its usage event, a vendor that
ignores ``stream_options``), usage is estimated from characters and flagged, so traffic is
never silently priced at $0."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from thrifty.core.request import ChatRequest
from thrifty.core.usage import NO_USAGE, Usage
from thrifty.engine.calls import Call, Trace, total_usage
from thrifty.ledger.entry import AttemptRow, LedgerEntry
from thrifty.limits.model import Limit
from thrifty.pricing.cost import format_usd
from thrifty.providers.base import Target
from thrifty.routing.answer import Answer


@dataclass(slots=True)
class Outcome:
    """What happened to one request, as the gateway saw it: every upstream call it made,
    which one's answer the client got, and why."""

    req: ChatRequest
    started: float
    """Wall-clock arrival time."""
    status: int
    route: str | None = None
    calls: list[Call] = field(default_factory=list)
    accepted: Call | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    error_code: str | None = None
    trace: Trace = field(default_factory=Trace)
    limits: list[Limit] = field(default_factory=list)
    """The limits the request holds a reservation in (settled when it ends)."""
    budget_warnings: list[str] = field(default_factory=list)
    """Soft limits the request crossed (a response header and the ledger trace say so)."""
    _answer: Answer | None = field(default=None, init=False, repr=False)
    _answered: tuple[str, Mapping[str, Any]] | None = field(default=None, init=False,
                                                            repr=False)
    """(model, completion body) of an answer not read yet (``answer`` parses it)."""

    @property
    def answer(self) -> Answer | None:
        """What the client was answered (text, finish reason, tool calls) when it
        succeeded; a streamed answer's text only (its tool calls are not assembled). For
        observers, which sample it: a completion body is read only when one asks."""
        if self._answer is None and self._answered is not None:
            self._answer = Answer.from_completion(*self._answered)
            self._answered = None
        return self._answer

    @answer.setter
    def answer(self, answer: Answer | None) -> None:
        self._answer, self._answered = answer, None

    def answered(self, model: str, body: Mapping[str, Any]) -> None:
        """The answer is this completion body's (read when ``answer`` is first asked for)."""
        self._answer, self._answered = None, (model, body)

    @property
    def target(self) -> Target | None:
        if self.accepted is not None:
            return self.accepted.target
        return self.calls[-1].target if self.calls else None

    @property
    def usage(self) -> Usage | None:
        return total_usage(self.calls)

    @property
    def usage_estimated(self) -> bool:
        calls = self.calls
        if len(calls) == 1:  # the common case, read several times per request
            return calls[0].usage_estimated
        return any(c.usage_estimated for c in calls)

    @property
    def cost(self) -> Decimal:
        calls = self.calls
        if len(calls) == 1:
            return calls[0].cost
        return sum((c.cost for c in calls), Decimal(0))


def ledger_entry(o: Outcome) -> LedgerEntry:
    usage = o.usage
    u = usage or NO_USAGE
    t = o.target
    calls = o.calls
    attempts = ((_attempt_row(0, calls[0]),) if len(calls) == 1
                else tuple(_attempt_row(i, c) for i, c in enumerate(calls)))
    return LedgerEntry(
        request_id=o.req.request_id,
        ts=o.started,
        requested_model=o.req.model,
        provider=t.provider if t else None,
        upstream_model=t.upstream_model if t else None,
        status=o.status,
        stream=o.req.stream,
        key_id=o.req.key_id,
        team=o.req.team,
        tags=orjson.dumps(list(o.req.options.tags)).decode() if o.req.options.tags else None,
        user=o.req.user,
        input_tokens=u.input_tokens,
        cached_input_tokens=u.cached_input_tokens,
        cache_write_tokens=u.cache_write_tokens,
        output_tokens=u.output_tokens,
        reasoning_tokens=u.reasoning_tokens,
        # the sum of the attempts' rounded costs, so request and attempt rows always agree
        cost_nano_usd=sum(a.cost_nano_usd for a in attempts),
        latency_ms=o.latency_ms,
        ttft_ms=o.ttft_ms,
        error_type=o.error_code,
        route=o.route,
        usage_known=usage is not None and not o.usage_estimated,
        trace=_trace_json(o),
        calls=len(calls),
        attempts=attempts,
    )


def _trace_json(o: Outcome) -> str | None:
    if not o.calls and not o.budget_warnings:
        return None
    data = o.trace.to_json(o.calls)
    if o.budget_warnings:
        data["budget_warnings"] = o.budget_warnings
    return orjson.dumps(data).decode()


def _attempt_row(n: int, c: Call) -> AttemptRow:
    u = c.usage or NO_USAGE
    t = c.target
    # positional, in AttemptRow's field order: a row per call, keywords cost more
    return AttemptRow(
        n, c.tier, t.provider, t.upstream_model, c.status, c.error_code, u.input_tokens,
        u.cached_input_tokens, u.cache_write_tokens, u.output_tokens, u.reasoning_tokens,
        c.cost_nano_usd, round(c.latency_ms, 3), c.verdict,
        c.usage is not None and not c.usage_estimated)


def cost_extension(o: Outcome) -> dict[str, Any]:
    """The ``thrifty`` object added to responses and to the final usage chunk."""
    t = o.target
    ext: dict[str, Any] = {
        "request_id": o.req.request_id,
        "provider": t.provider if t else None,
        "model": t.upstream_model if t else None,
        "cost_usd": o.calls[0].cost_usd if len(o.calls) == 1 else format_usd(o.cost),
        "route": o.route,
    }
    if len(o.calls) > 1:  # fallbacks or cascade tiers: what all of them billed together
        ext["calls"] = len(o.calls)
        total = o.usage
        if total is not None:
            ext["billed_usage"] = total.to_openai()
    if o.usage_estimated:
        ext["usage_estimated"] = True
    return ext
