"""Gateway overhead: the time a request spent in thrifty itself rather than waiting on an
upstream. Pure arithmetic over the calls' places on the request's timeline.

    JSON:   latency - time covered by upstream calls
    stream: time to first token - time covered by upstream calls before the first token

"Covered" is the union of the calls' intervals, so hedged or parallel calls (a cascade
tier asking two models at once) are not counted twice. A stream's relayed body is not
overhead: after its first token thrifty forwards bytes as the upstream sends them."""

from __future__ import annotations

from collections.abc import Sequence

from thrifty.engine.calls import Call

CONTINUED = "stream cut"
"""Verdict prefix of a stream call that failed mid-stream and was continued elsewhere:
the calls after it happened after the first token."""


def upstream_ms(calls: Sequence[Call]) -> float:
    """ms covered by upstream calls up to the answer (or the first token)."""
    if len(calls) == 1:  # the common case: no sorting, no list
        c = calls[0]
        return c.first_byte_ms if c.first_byte_ms is not None else c.latency_ms
    spans: list[tuple[float, float]] = []
    for c in calls:
        span = c.first_byte_ms if c.first_byte_ms is not None else c.latency_ms
        spans.append((c.offset_ms, c.offset_ms + span))
        if c.verdict is not None and c.verdict.startswith(CONTINUED):
            break
    spans.sort()
    covered, end = 0.0, float("-inf")
    for a, b in spans:
        if b <= end:
            continue
        covered += b - max(a, end)
        end = b
    return covered


def overhead_ms(calls: Sequence[Call], latency_ms: float, ttft_ms: float | None) -> float:
    """Time in thrifty itself, never negative. Callers skip requests that never called
    upstream: a refusal is all overhead and would only blur the figure."""
    total = ttft_ms if ttft_ms is not None else latency_ms
    return max(0.0, total - upstream_ms(calls))
