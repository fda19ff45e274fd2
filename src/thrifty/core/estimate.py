"""Token estimates for when a provider reports none (a cut stream) and for routing before
a call (expected cost). Deliberately simple: about 4 characters a token, like cl100k on
English, plus fixed costs per message and per image."""

from __future__ import annotations

from typing import Any

from thrifty.core.request import ChatRequest
from thrifty.core.usage import Usage

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
