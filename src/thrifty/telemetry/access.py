"""The access log (one line per request, from the observer hook) and body logging (prompt
and completion, only for the keys it is enabled for). Both are off unless configured; the
formatter in ``logs`` redacts what they write."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from thrifty.config.telemetry import LogsConfig

if TYPE_CHECKING:
    from thrifty.core.request import ChatRequest
    from thrifty.engine.account import Outcome
    from thrifty.ledger.entry import LedgerEntry

access_log = logging.getLogger("thrifty.access")
body_log = logging.getLogger("thrifty.bodies")


class AccessLog:
    """Observer: ``request <id> <model> -> <provider>/<upstream> <status> <ms> $<cost>``."""

    def request_done(self, outcome: Outcome, entry: LedgerEntry) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        fields = {
            "request_id": entry.request_id, "model": entry.requested_model,
            "provider": entry.provider, "upstream_model": entry.upstream_model,
            "status": entry.status, "latency_ms": round(entry.latency_ms, 1),
            "ttft_ms": round(entry.ttft_ms, 1) if entry.ttft_ms is not None else None,
            "cost_usd": entry.cost_nano_usd / 1e9, "route": entry.route,
            "calls": entry.calls, "stream": entry.stream,
            "input_tokens": entry.input_tokens, "output_tokens": entry.output_tokens,
            "key_id": entry.key_id, "team": entry.team, "error": entry.error_type,
        }
        access_log.info("request %s %s -> %s/%s %d %.0fms $%.6f", entry.request_id,
                        entry.requested_model, entry.provider, entry.upstream_model,
                        entry.status, entry.latency_ms, entry.cost_nano_usd / 1e9,
                        extra={"fields": fields, "request_id": entry.request_id})


class BodyLog:
    """Logs a request's prompt and completion when enabled for its key (or for all)."""

    def __init__(self, every_key: bool, key_ids: Sequence[str]) -> None:
        self.every_key = every_key
        self.key_ids = frozenset(key_ids)

    @classmethod
    def from_config(cls, cfg: LogsConfig) -> BodyLog | None:
        if not cfg.log_bodies and not cfg.log_bodies_keys:
            return None
        return cls(cfg.log_bodies, cfg.log_bodies_keys)

    def wants(self, req: ChatRequest) -> bool:
        return self.every_key or req.key_id in self.key_ids

    def completion(self, req: ChatRequest, body: bytes) -> None:
        """A JSON answer, as sent to the client."""
        if self.wants(req):
            self._emit(req, orjson.loads(body))

    def stream(self, req: ChatRequest, events: Sequence[bytes]) -> None:
        """A streamed answer: the SSE events sent, reassembled into text."""
        if self.wants(req):
            self._emit(req, {"content": stream_text(events)})

    def _emit(self, req: ChatRequest, response: Any) -> None:
        body_log.info("bodies of %s", req.request_id, extra={
            "request_id": req.request_id,
            "fields": {"key_id": req.key_id, "request": req.body, "response": response}})


def stream_text(events: Sequence[bytes]) -> str:
    """The content deltas of OpenAI chunk events, joined."""
    parts: list[str] = []
    for event in b"".join(events).split(b"\n\n"):
        if not event.startswith(b"data: {"):
            continue
        chunk = orjson.loads(event[6:])
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                parts.append(content)
    return "".join(parts)
