"""Shared pieces of ``classify_error``: reading vendor error bodies and rate-limit headers.
Classification uses statuses and structured fields (error ``code``/``type``/``status``),
never message substrings. Upstream messages are passed on (minus anything that looks like
our key); raw bodies are not."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import orjson

from thrifty.errors import (
    ContentPolicyViolation,
    ContextWindowExceeded,
    ThriftyError,
    error_for_status,
)

_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_POLICY_CODES = frozenset({"content_policy_violation", "content_filter", "SAFETY"})


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``retry-after`` (seconds or HTTP date), or
    the vendors' reset headers."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if "," in value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - (now if now is not None else time.time()))
    return None


def error_fields(body: bytes) -> tuple[str, str | None, str | None]:
    """``(message, code, type)`` from an OpenAI, Anthropic or Gemini error body."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ("the provider sent a non-JSON error body", None, None)
    if isinstance(data, list) and data:  # Gemini streams errors as a one-element array
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return ("the provider sent an unrecognised error body", None, None)
    message = err.get("message")
    code = err.get("code")
    etype = err.get("type") or err.get("status")
    return (
        str(message) if message else "no message",
        str(code) if isinstance(code, str) else None,
        str(etype) if isinstance(etype, str) else None,
    )


def scrub(message: str, secret: str | None) -> str:
    if secret and len(secret) >= 6:
        message = message.replace(secret, "[redacted]")
    return message


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str,
    api_key: str | None,
) -> ThriftyError:
    message, code, etype = error_fields(body)
    message = scrub(message, api_key)
    if status == 400 and (code in _CONTEXT_CODES or etype in _CONTEXT_CODES):
        return ContextWindowExceeded(
            f"provider {provider}: {message}", provider=provider, param="messages"
        )
    if status == 400 and (code in _POLICY_CODES or etype in _POLICY_CODES):
        return ContentPolicyViolation(f"provider {provider}: {message}", provider=provider)
    return error_for_status(
        status, message, provider=provider, retry_after=retry_after_seconds(headers), code=code
    )
