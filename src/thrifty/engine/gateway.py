"""The gateway: the request flow top to bottom, free of any web framework.

    plan (route + policy) -> execute (fallback attempts or cascade tiers) -> account -> ledger

``complete`` answers a non-streaming request; ``stream`` opens a streaming one and returns
a :class:`GatewayStream` whose ``events()`` yields ready-to-send SSE bytes. Before the first
token a failing target is replaced by the plan's next one, invisibly; after it, the stream
ends with an OpenAI-style error event. Every request, whatever happens, becomes exactly one
ledger row carrying every upstream call it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import orjson

from thrifty.config.load import load_settings
from thrifty.config.resolve import Runtime, resolve
from thrifty.core.clock import Clock, SystemClock
from thrifty.core.estimate import estimate_prompt_tokens, estimate_usage
from thrifty.core.request import ChatRequest
from thrifty.core.response import Completion
from thrifty.core.usage import Usage
from thrifty.drift.monitor import DriftMonitor, build_monitor
from thrifty.engine.account import Outcome, cost_extension, ledger_entry
from thrifty.engine.budgets import Budgets
from thrifty.engine.calls import Call
from thrifty.engine.cascade import CascadeRunner
from thrifty.engine.execute import Executor, OpenStream
from thrifty.engine.feedback import FeedbackBook, Pending
from thrifty.engine.observers import Observer
from thrifty.engine.planner import plan_request, route_summary
from thrifty.engine.resilient import Resilience
from thrifty.engine.streaming import (
    CLIENT_CLOSED,
    CompletionStream,
    Continuation,
    GatewayStream,
)
from thrifty.errors import ThriftyError, UpstreamTimeout
from thrifty.ledger.writer import LedgerWriter
from thrifty.limits.rules import LimitRule
from thrifty.providers.base import Target
from thrifty.providers.transport import Deadlines, Transport
from thrifty.routing.policy import Plan
from thrifty.routing.stats import ModelStats, RouterStats

log = logging.getLogger("thrifty.gateway")
T = TypeVar("T")
_NO_DEADLINE = contextlib.nullcontext()
_DEADLINE_SLACK_S = 0.001


class Gateway:
    def __init__(
        self,
        runtime: Runtime,
        *,
        ledger: LedgerWriter | None = None,
        transport: Transport | None = None,
        executor: Executor | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.runtime = runtime
        self.routes = runtime.routes
        self.ledger = ledger
        self.transport = transport or Transport()
        self.executor = executor or Executor(self.transport)
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.stats = RouterStats()
        self.cascades = CascadeRunner(self)
        self.resilience = Resilience(self, runtime.settings.resilience,
                                     runtime.settings.fallbacks, self.rng)
        self.feedback_book = FeedbackBook()
        self.budgets = Budgets(runtime.settings.limits, self.clock,
                               runtime.settings.server.request_timeout_s)
        s = runtime.settings.server
        self.deadlines = Deadlines(s.connect_timeout_s, s.first_token_timeout_s,
                                   s.request_timeout_s)
        self.observers: list[Observer] = []
        """Told of every finished request after the ledger (metrics, drift, traces)."""
        self.drift: DriftMonitor | None = build_monitor(runtime.settings.drift, self.clock)
        """Drift alerts per deployment (None when ``drift.enabled`` is false)."""
        if self.drift is not None:
            self.observers.append(self.drift)

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> Gateway:
        """A gateway from a config file (or the environment), with its SQLite ledger."""
        settings = load_settings(path, overrides=overrides)
        runtime = resolve(settings, base_dir=Path(path).parent if path else None)
        return cls(runtime, ledger=open_ledger(runtime))

    async def start(self) -> None:
        if self.ledger is not None:
            await self.ledger.start()
            await self._seed_stats()
        if any(getattr(getattr(r.policy, "rules", None), "needs_language", False)
               for r in self.routes.routes()):
            from thrifty.routing.language import default_detector

            default_detector()  # load the model now, not on the first request

    async def close(self) -> None:
        await self.transport.close()
        if self.drift is not None:  # delivers queued webhook alerts
            await self.drift.close()
        await self.budgets.close()
        aclose = getattr(self.resilience.health, "aclose", None)
        if aclose is not None:  # the Redis health store's connection pool
            await aclose()
        if self.ledger is not None:
            await self.ledger.close()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- library use -----------------------------------------------------------------------

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI chat-completions body in, the response body out (with its ``thrifty``
        cost object), validated exactly as the server validates it. Errors raise the
        :mod:`thrifty.errors` tree.

            async with Gateway.from_config("thrifty.yaml") as gw:
                reply = await gw.chat({"model": "gpt-4o-mini", "messages": [...]})
        """
        req = self._parse(body, stream=False)
        reply = await self.complete(req)
        result: dict[str, Any] = orjson.loads(reply.body)
        return result

    async def chat_stream(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Stream a chat completion as OpenAI chunk dicts (the final one carries usage and
        the ``thrifty`` cost object)."""
        req = self._parse({**body, "stream": True,
                           "stream_options": {"include_usage": True}}, stream=True)
        stream = await self.stream(req)
        events = stream.events()
        try:
            async for data in events:
                for line in data.split(b"\n\n"):
                    if line.startswith(b"data: {"):
                        yield orjson.loads(line[6:])
        finally:
            await events.aclose()

    def _parse(self, body: dict[str, Any], *, stream: bool) -> ChatRequest:
        from thrifty.core.ids import new_request_id
        from thrifty.errors import InvalidRequest
        from thrifty.wire.openai_chat import parse_chat_request

        rid = new_request_id()
        try:
            if bool(body.get("stream")) != stream:
                raise InvalidRequest("use chat_stream() for stream=true and chat() otherwise",
                                     param="stream")
            return parse_chat_request(orjson.dumps(body), rid)
        except InvalidRequest as exc:
            self.record_rejection(None, rid, self.clock.now(), exc)
            raise

    # -- the flow --------------------------------------------------------------------------

    async def complete(self, req: ChatRequest, *, started: float | None = None,
                       account_later: bool = False) -> GatewayReply:
        """``account_later``: write the ledger row, settle the budgets and tell the observers
        on the event loop's next turn, after the caller (the HTTP server) has sent the
        response, instead of before: the client does not wait for the accounting."""
        outcome = Outcome(req, self.clock.now() if started is None else started, status=200)
        t0 = self.clock.monotonic()
        deadlines = self._deadlines(req)
        async with self._accounted(outcome, t0):
            plan = await self._reserve(outcome, self._plan(outcome))
            if plan.mode == "cascade":
                completion, call = await self.cascades.complete(plan, outcome, deadlines)
            else:
                completion, call = await self.resilience.run(
                    req.model, plan.tiers_targets(), 0, outcome,
                    lambda t: self.executor.complete(req, t, deadlines))
        outcome.accepted = call
        call.verdict = call.verdict or "accepted"
        outcome.latency_ms = (self.clock.monotonic() - t0) * 1000
        outcome.ttft_ms = outcome.latency_ms
        body = completion.body
        outcome.answered(call.target.model, body)
        ext = body["thrifty"] = cost_extension(outcome)
        if account_later:
            asyncio.get_running_loop().call_soon(self.record, outcome)
        else:
            self.record(outcome)
        return GatewayReply(outcome, orjson.dumps(body), ext["cost_usd"])

    async def stream(self, req: ChatRequest, *, started: float | None = None) -> GatewayStream:
        outcome = Outcome(req, self.clock.now() if started is None else started, status=200)
        t0 = self.clock.monotonic()
        deadlines = self._deadlines(req)
        source: OpenStream | CompletionStream
        async with self._accounted(outcome, t0):
            plan = await self._reserve(outcome, self._plan(outcome))
            if plan.mode == "cascade":
                source, call = await self.cascades.stream(plan, outcome, deadlines)
            else:
                source, call = await self.resilience.run(
                    req.model, plan.tiers_targets(), 0, outcome,
                    lambda t: self.executor.open_stream(req, t, deadlines), streaming=True)
        outcome.accepted = call
        call.verdict = call.verdict or "accepted"
        outcome.ttft_ms = (self.clock.monotonic() - t0) * 1000
        cont = None
        if plan.mode == "fallback" and self.runtime.settings.resilience.stream_failover == (
                "continue"):
            cont = self._continuation(req, plan.tiers_targets(), outcome, deadlines)
        return GatewayStream(outcome, call, source, t0, self.clock.monotonic, self.record,
                             cont)

    def _continuation(self, req: ChatRequest, targets: Sequence[Target], outcome: Outcome,
                      deadlines: Deadlines) -> Continuation:
        """Reopen a stream that failed after its first token on another deployment, with
        the text already sent as an assistant prefix the model continues from."""

        async def reopen(prefix: str, tried: set[str]) -> tuple[OpenStream, Call] | None:
            rest = [t for t in targets if t.key not in tried] or list(targets)
            messages = list(req.body.get("messages") or [])
            if prefix:
                messages.append({"role": "assistant", "content": prefix})
            cont_req = dataclasses.replace(req, body={**req.body, "messages": messages})
            try:
                return await self.resilience.run(
                    req.model, rest, 0, outcome,
                    lambda t: self.executor.open_stream(cont_req, t, deadlines), streaming=True)
            except ThriftyError:
                return None

        return reopen

    async def _reserve(self, outcome: Outcome, plan: Plan) -> Plan:
        """Downgrade the plan if a budget is nearly spent, then reserve for it."""
        key_limits = outcome.req.key_limits
        rules = [r for r in key_limits if isinstance(r, LimitRule)] if key_limits else []
        budgets = self.budgets
        if not budgets.rules and not rules:
            return plan  # no limit applies: nothing to downgrade for, nothing to hold
        cheaper = plan
        if budgets.downgrade_at is not None:
            cheaper = await budgets.downgrade(outcome, plan, rules)
            if cheaper is not plan:
                outcome.trace.plan_from(cheaper)
        await budgets.reserve(outcome, cheaper, rules)
        return cheaper

    async def _seed_stats(self) -> None:
        """Start latency, output-length and error estimates from the last day of the ledger
        instead of from nothing (effective-cost and least-latency read them)."""
        recent = getattr(self.ledger.store if self.ledger else None, "recent_model_stats", None)
        if recent is None:
            return
        rows = await asyncio.to_thread(recent, self.clock.now() - 86_400)
        for provider, model, n, latency, ttft, out, errors in rows:
            self.stats.seed(f"{provider}/{model}", ModelStats(
                samples=n, ttft_ms=ttft, latency_ms=latency, output_tokens=out,
                error_rate=errors))

    def _plan(self, outcome: Outcome) -> Plan:
        route, plan = plan_request(outcome.req, self.routes, self.stats, self.rng, self.clock,
                                   self.drift.demoted if self.drift is not None else None)
        outcome.route = route_summary(route, plan)
        outcome.trace.plan_from(plan)  # its JSON is made when the row is written
        if plan.router is not None:  # a learned route: keep the prompt for feedback
            self.feedback_book.remember(outcome.req.request_id, Pending(
                plan.prompt, plan.tiers[0].targets[0].model, route.name, plan.router))
        return plan

    async def feedback(self, request_id: str, score: float) -> dict[str, Any]:
        """Store a client's score for a request and refine the learned route behind it."""
        pending = self.feedback_book.apply(request_id, score)
        stored = False
        if self.ledger is not None and hasattr(self.ledger.store, "add_feedback"):
            await asyncio.to_thread(
                self.ledger.store.add_feedback, request_id, self.clock.now(), score,
                pending.model if pending else None, pending.route if pending else None)
            stored = True
        return {"request_id": request_id, "stored": stored, "router_updated": bool(pending),
                "model": pending.model if pending else None}

    # -- attempts --------------------------------------------------------------------------

    async def attempt(self, target: Target, tier: int, outcome: Outcome,
                      fn: Callable[[Target], Awaitable[T]], *, streaming: bool = False,
                      budget_s: float | None = None) -> tuple[T, Call]:
        """One upstream call, recorded as a :class:`Call` (priced, timed, in the stats)."""
        call = Call(target, tier, offset_ms=(self.clock.now() - outcome.started) * 1000)
        outcome.calls.append(call)
        key = target.key
        self.stats.started(key)
        t0 = self.clock.monotonic()
        try:
            try:
                async with self._attempt_deadline(outcome, budget_s):
                    result = await fn(target)
            except TimeoutError:
                raise UpstreamTimeout(f"provider {target.provider} did not answer within the "
                                      "request's deadline", provider=target.provider) from None
        except ThriftyError as exc:
            call.status, call.error_code = exc.status, exc.code
            call.latency_ms = (self.clock.monotonic() - t0) * 1000
            self.stats.record(key, ok=False, latency_ms=call.latency_ms)
            raise
        except asyncio.CancelledError:
            # cancelled (a lost hedge race, or the client left): the provider saw the
            # prompt, so its input is billed, estimated and flagged; the output never came
            call.status, call.error_code = CLIENT_CLOSED, "cancelled"
            call.latency_ms = (self.clock.monotonic() - t0) * 1000
            call.usage = Usage(input_tokens=estimate_prompt_tokens(outcome.req.body))
            call.usage_estimated = True
            raise
        finally:
            self.stats.finished(key)
        call.latency_ms = call.first_byte_ms = (self.clock.monotonic() - t0) * 1000
        if isinstance(result, Completion):
            call.usage = result.usage
            if call.usage is None:  # the vendor sent no usage: estimate, never $0
                call.usage = estimate_usage(outcome.req, _completion_chars(result.body))
                call.usage_estimated = True
            self.stats.record(key, ok=True, latency_ms=call.latency_ms,
                              output_tokens=call.usage.output_tokens)
        elif streaming:
            self.stats.record(key, ok=True, latency_ms=call.latency_ms,
                              ttft_ms=call.latency_ms)
        return result, call

    def _attempt_deadline(self, outcome: Outcome, budget_s: float | None
                          ) -> AbstractAsyncContextManager[object]:
        """What is left of the request's deadline, as a timeout around one attempt. None
        when the transport's own total deadline, just started and of the same length,
        already enforces it (an attempt starting within a millisecond of the request)."""
        if budget_s is None:
            return _NO_DEADLINE
        total = outcome.req.options.timeout_s or self.deadlines.total_s
        if budget_s >= total - _DEADLINE_SLACK_S:
            return _NO_DEADLINE
        return asyncio.timeout(budget_s)

    # -- accounting ------------------------------------------------------------------------

    def _accounted(self, outcome: Outcome, t0: float) -> _Accounted:
        return _Accounted(self, outcome, t0)

    def _deadlines(self, req: ChatRequest) -> Deadlines:
        total = req.options.timeout_s
        if total is None:
            return self.deadlines
        d = self.deadlines
        return Deadlines(min(d.connect_s, total), min(d.first_byte_s, total), total)

    def fail(self, outcome: Outcome, t0: float, status: int, code: str | None) -> None:
        outcome.status = status
        outcome.error_code = code
        outcome.latency_ms = (self.clock.monotonic() - t0) * 1000
        self.record(outcome)

    def record_rejection(self, req: ChatRequest | None, request_id: str, started: float,
                         exc: ThriftyError) -> None:
        """A request refused before routing (auth, malformed body) still gets its row."""
        if req is None:
            req = ChatRequest(body={}, model="", stream=False, include_usage=False,
                              request_id=request_id)
        self.record(Outcome(req, started, status=exc.status, error_code=exc.code))

    def record(self, outcome: Outcome) -> None:
        """The request ended: hand its row to the ledger and settle its reservation."""
        entry = ledger_entry(outcome)
        if self.ledger is not None:
            self.ledger.submit(entry)
        self.budgets.settle(outcome, entry.cost_nano_usd)
        for observer in self.observers:
            try:
                observer.request_done(outcome, entry)
            except Exception:  # an observer's bug must never fail the request
                log.exception("observer %r failed", observer)


class _Accounted:
    """Records the request's row if planning or executing fails (or the client leaves)."""

    def __init__(self, gw: Gateway, outcome: Outcome, t0: float) -> None:
        self._gw, self._outcome, self._t0 = gw, outcome, t0

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        if isinstance(exc, ThriftyError):
            self._gw.fail(self._outcome, self._t0, exc.status, exc.code)
        elif isinstance(exc, asyncio.CancelledError):
            self._gw.fail(self._outcome, self._t0, CLIENT_CLOSED, "client_closed")


class GatewayReply:
    __slots__ = ("body", "cost_usd", "outcome")

    def __init__(self, outcome: Outcome, body: bytes, cost_usd: str) -> None:
        self.outcome = outcome
        self.body = body
        self.cost_usd = cost_usd
        """The request's cost as the response's ``thrifty.cost_usd`` states it."""

    @property
    def target(self) -> Target:
        assert self.outcome.target is not None
        return self.outcome.target


def _completion_chars(body: dict[str, Any]) -> int:
    n = 0
    for choice in body.get("choices") or ():
        msg = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(msg, dict):
            if isinstance(msg.get("content"), str):
                n += len(msg["content"])
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    n += len(fn["arguments"])
    return n


def open_ledger(runtime: Runtime) -> LedgerWriter | None:
    cfg = runtime.settings.ledger
    if cfg.backend == "none":
        return None
    if cfg.backend == "postgres":
        from thrifty.errors import ConfigError
        from thrifty.ledger.postgres import PostgresLedger

        if cfg.dsn is None:
            raise ConfigError("ledger.dsn: the postgres ledger needs a DSN, e.g. "
                              "dsn: ${THRIFTY_LEDGER_DSN}")
        return LedgerWriter(PostgresLedger(cfg.dsn.get_secret_value(), schema=cfg.pg_schema))
    from thrifty.ledger.sqlite import SQLiteLedger

    return LedgerWriter(SQLiteLedger(cfg.path))
