"""Streams as the client sees them: a live upstream stream relayed chunk by chunk, or an
answer already in hand (a cascade tier accepted it) replayed as a stream. Either way the
request is accounted exactly once, when the stream ends or the client goes away."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from thrifty.core.estimate import estimate_usage
from thrifty.core.response import Completion
from thrifty.core.usage import Usage
from thrifty.engine.account import Outcome, cost_extension
from thrifty.engine.calls import Call
from thrifty.engine.execute import OpenStream
from thrifty.errors import ThriftyError
from thrifty.providers.base import Target
from thrifty.routing.answer import Answer

_DONE = b"data: [DONE]\n\n"
_MAX_CONTINUATIONS = 3
CLIENT_CLOSED = 499


class CompletionStream:
    """A finished completion presented through :class:`OpenStream`'s interface."""

    def __init__(self, completion: Completion) -> None:
        self._completion = completion
        self.usage: Usage | None = completion.usage

    async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        yield completion_chunks(self._completion.body)

    def close(self) -> None:
        pass


def completion_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A chat.completion as the chunks a stream of it would have carried."""
    base = {"id": body.get("id", "chatcmpl-thrifty"), "object": "chat.completion.chunk",
            "created": body.get("created", 0), "model": body.get("model", "")}
    choice = (body.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    delta: dict[str, Any] = {"role": "assistant", "content": msg.get("content") or ""}
    if msg.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(msg["tool_calls"])]
    chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
              {**base, "choices": [{"index": 0, "delta": {},
                                    "finish_reason": choice.get("finish_reason", "stop")}]}]
    if body.get("usage"):
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return chunks


Continuation = Callable[[str, set[str]], Awaitable["tuple[OpenStream, Call] | None"]]
"""Reopen a failed stream elsewhere: (text already sent, deployment keys tried) -> a new
stream that continues it (assistant prefix), or None when nothing is left to try."""


class GatewayStream:
    """A stream already past its first token. Iterate ``events()`` to the end or call
    ``aclose()``: either way the request is accounted exactly once.

    If the upstream fails mid-stream and a ``continuation`` is given (route option
    ``stream_failover: continue``), the stream goes on from another deployment, which is
    sent the text so far as an assistant prefix; the switch is in the ledger's trace.
    Otherwise the stream ends with an OpenAI-style error event."""

    def __init__(self, outcome: Outcome, call: Call, source: OpenStream | CompletionStream,
                 t0: float, monotonic: Callable[[], float],
                 record: Callable[[Outcome], None],
                 continuation: Continuation | None = None) -> None:
        self.outcome = outcome
        self._call = call
        self._source = source
        self._t0 = t0
        self._monotonic = monotonic
        self._record = record
        self._continuation = continuation
        self._sent: list[str] = []
        self._chars = 0
        self._finished = False

    @property
    def target(self) -> Target:
        return self._call.target

    async def events(self) -> AsyncGenerator[bytes, None]:
        req = self.outcome.req
        usage_chunk: dict[str, Any] | None = None
        tried = {self._call.target.key}
        continued = False
        try:
            while True:
                try:
                    async for batch in self._source.batches():
                        out = []
                        for chunk in batch:
                            if not chunk.get("choices") and "usage" in chunk:
                                usage_chunk = chunk  # held back: sent last, with the cost
                                continue
                            if continued:
                                _drop_role(chunk)
                            self._chars += _chunk_chars(chunk, self._sent)
                            out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
                        if out:
                            yield b"".join(out)
                    break
                except ThriftyError as exc:
                    if not await self._continue(exc, tried):
                        raise
                    continued = True
        except ThriftyError as exc:
            self._settle(exc.status, exc.code)
            yield b"data: " + orjson.dumps(exc.to_openai()) + b"\n\n" + _DONE
            return
        except BaseException:
            self._settle(CLIENT_CLOSED, "client_closed")
            raise
        self._settle(200, None)
        if req.include_usage:
            chunk = usage_chunk or self._synth_usage_chunk()
            chunk["thrifty"] = cost_extension(self.outcome)
            yield b"data: " + orjson.dumps(chunk) + b"\n\n" + _DONE
        else:
            yield _DONE

    async def _continue(self, exc: ThriftyError, tried: set[str]) -> bool:
        """Close the failed upstream call (unpriced: the provider failed it) and reopen
        the stream elsewhere; False when that is not configured or not possible."""
        if self._continuation is None or not exc.retryable or len(tried) > _MAX_CONTINUATIONS:
            return False
        failed = self._call
        self._source.close()
        failed.status, failed.error_code = exc.status, exc.code
        failed.latency_ms = (self._monotonic() - self._t0) * 1000
        # The provider failed this call: nothing of it is billed to the client (a partial
        # usage report, like Anthropic's message_start, is not a charge for a failed call).
        failed.usage = None
        failed.verdict = "stream cut: continued elsewhere"
        nxt = await self._continuation("".join(self._sent), tried)
        if nxt is None:
            return False
        self._source, self._call = nxt
        self._chars = 0
        tried.add(self._call.target.key)
        self.outcome.accepted = self._call
        self._call.verdict = f"accepted: continued after {len(''.join(self._sent))} chars"
        self.outcome.trace.escalation = (f"stream from {failed.target.key} failed "
                                         f"({exc.code}); continued on {self._call.target.key}")
        return True

    async def aclose(self) -> None:
        """The client went away: stop paying for tokens no one reads, and account."""
        self._settle(CLIENT_CLOSED, "client_closed")

    def _settle(self, status: int, code: str | None) -> None:
        if self._finished:
            return
        self._finished = True
        self._source.close()
        o, call = self.outcome, self._call
        o.status = status
        o.error_code = code
        o.latency_ms = (self._monotonic() - self._t0) * 1000
        call.status = status
        call.error_code = code
        call.latency_ms = o.latency_ms
        usage = self._source.usage if isinstance(self._source, CompletionStream) else (
            self._source.decoder.usage)
        if status not in (200, CLIENT_CLOSED):
            usage = None  # the provider failed the call: see _continue
        elif usage is None:
            # the stream was delivered (or we cut it): the provider bills what it sent
            usage = estimate_usage(o.req, self._chars)
            call.usage_estimated = True
        call.usage = usage
        if status == 200:  # the text the client read, for observers (refusals, JSON)
            o.answer = Answer(call.target.model, "".join(self._sent), None)
        self._record(o)

    def _synth_usage_chunk(self) -> dict[str, Any]:
        u = self._call.usage
        assert u is not None
        return {
            "id": f"chatcmpl-{self.outcome.req.request_id}",
            "object": "chat.completion.chunk",
            "created": int(self.outcome.started),
            "model": self.target.upstream_model,
            "choices": [],
            "usage": u.to_openai(),
        }


def _drop_role(chunk: dict[str, Any]) -> None:
    """A continuation's first delta repeats the role: the client has it already."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            delta.pop("role", None)


def _chunk_chars(chunk: dict[str, Any], sent: list[str]) -> int:
    n = 0
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str):
                n += len(content)
                sent.append(content)
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    n += len(fn["arguments"])
    return n
