"""Gateway authentication: until virtual keys exist, one master key presented as a Bearer
token (or ``x-api-key``, as Anthropic clients send it), compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from thrifty.errors import AuthenticationFailed

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("x-api-key")


def check_master_key(headers: Mapping[str, str], master_key: bytes | None) -> None:
    if master_key is None:
        return
    key = presented_key(headers)
    if key is None:
        raise AuthenticationFailed(
            "Missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    if not hmac.compare_digest(key.encode(), master_key):
        raise AuthenticationFailed("Invalid API key")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")
