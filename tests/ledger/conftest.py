"""Shared ledger test rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from thrifty.ledger.entry import LedgerEntry

MakeEntry = Callable[..., LedgerEntry]


def make_entry(n: int = 0, **overrides: Any) -> LedgerEntry:
    """A routed, successful row; ``n`` makes the request id unique."""
    fields: dict[str, Any] = {
        "request_id": f"req-{n:06d}",
        "ts": 1_714_521_600.0 + n,  # 2024-05-01T00:00:00Z + n seconds
        "requested_model": "cheap",
        "provider": "openai",
        "upstream_model": "gpt-4o-mini",
        "status": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_nano_usd": 4_500,
        "latency_ms": 100.0,
    }
    fields.update(overrides)
    return LedgerEntry(**fields)


@pytest.fixture
def entry() -> MakeEntry:
    return make_entry
