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


_BOUND_PER_MESSAGE = 8
_BOUND_PER_IMAGE = 2_000  # above any vendor's charge for one image at the highest detail


def max_prompt_tokens(body: dict[str, Any]) -> int:
    """An upper bound on the prompt tokens a provider can bill: byte-level BPE tokenizers
    make at most one token per UTF-8 byte, plus per-message framing and images. Budgets
    reserve this (and settle to the real count), so a request that fits its reservation can
    never settle above a budget."""
    total = 0
    for msg in body.get("messages") or ():
        total += _BOUND_PER_MESSAGE
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            total += _utf8_len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text":
                    total += _utf8_len(str(part.get("text", "")))
                else:
                    total += _BOUND_PER_IMAGE
        calls = msg.get("tool_calls") if isinstance(msg, dict) else None
        if calls:
            total += len(str(calls).encode())
    if body.get("tools"):
        total += len(str(body["tools"]).encode())
    return total


def _utf8_len(text: str) -> int:
    """``len(text.encode())`` without copying the prompt: ASCII (the usual case, and O(1) to
    tell) is one byte a character."""
    return len(text) if text.isascii() else len(text.encode())
