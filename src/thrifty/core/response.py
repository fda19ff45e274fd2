"""What an adapter hands back: an OpenAI-shaped completion or stream chunks, plus usage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from thrifty.core.usage import Usage


@dataclass(slots=True)
class Completion:
    body: dict[str, Any]
    """An OpenAI ``chat.completion`` object (the usage inside is rewritten by the gateway)."""
    usage: Usage | None
    finish_reason: str | None = None
    headers: Mapping[str, str] | None = None
    """The upstream response's headers (rate-limit headroom is read from them)."""


class StreamDecoder(Protocol):
    """Turns one upstream stream, event by event, into OpenAI ``chat.completion.chunk``s.

    A decoder holds the per-stream state a vendor format needs (message id, which content
    block is which tool call). ``usage`` and ``finish_reason`` are filled in as seen.
    """

    usage: Usage | None
    finish_reason: str | None
    done: bool

    def feed(self, event: str | None, data: bytes) -> list[dict[str, Any]]:
        """Decode one SSE event (its ``event:`` name and ``data:`` payload)."""
