"""Live statistics the latency- and cost-aware policies read: per target, exponentially
weighted moving averages of time to first token, total latency, output tokens, error and
parse-failure rates, plus the number of requests in flight.

The engine records; policies read an immutable :class:`ModelStats` per target. In-process
by default (each worker learns from its own traffic); seeded from the ledger at start-up.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

_ALPHA = 0.2  # weight of the newest observation: about the last 10 requests dominate
_RECENT = 64  # time-to-first-token samples kept per target for its p95 (hedging)


@dataclass(frozen=True, slots=True)
class ModelStats:
    samples: int = 0
    ttft_ms: float | None = None
    latency_ms: float | None = None
    output_tokens: float | None = None
    error_rate: float = 0.0
    parse_failure_rate: float = 0.0
    in_flight: int = 0


class StatsView(Protocol):
    def get(self, key: str) -> ModelStats: ...


def _ewma(old: float | None, new: float) -> float:
    return new if old is None else old + _ALPHA * (new - old)


class RouterStats:
    """Mutable store behind :class:`StatsView`; keys are ``provider/upstream_model``."""

    def __init__(self) -> None:
        self._stats: dict[str, ModelStats] = {}
        self._in_flight: dict[str, int] = {}
        self._ttfts: dict[str, deque[float]] = {}

    def get(self, key: str) -> ModelStats:
        s = self._stats.get(key, _EMPTY)
        n = self._in_flight.get(key, 0)
        if n == s.in_flight:
            return s
        return ModelStats(s.samples, s.ttft_ms, s.latency_ms, s.output_tokens, s.error_rate,
                          s.parse_failure_rate, n)

    def started(self, key: str) -> None:
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def finished(self, key: str) -> None:
        n = self._in_flight.get(key, 0) - 1
        if n > 0:
            self._in_flight[key] = n
        else:
            self._in_flight.pop(key, None)

    def record(
        self,
        key: str,
        *,
        ok: bool,
        latency_ms: float,
        ttft_ms: float | None = None,
        output_tokens: int | None = None,
        parse_failed: bool = False,
    ) -> None:
        s = self._stats.get(key, _EMPTY)
        if ok and ttft_ms is not None:
            recent = self._ttfts.get(key)  # not setdefault: it would build a deque per call
            if recent is None:
                recent = self._ttfts[key] = deque(maxlen=_RECENT)
            recent.append(ttft_ms)
        # Positional and with the always-set rates inlined: this runs on every attempt.
        self._stats[key] = ModelStats(
            s.samples + 1,
            _ewma(s.ttft_ms, ttft_ms) if ttft_ms is not None else s.ttft_ms,
            _ewma(s.latency_ms, latency_ms) if ok else s.latency_ms,
            (_ewma(s.output_tokens, output_tokens)
             if ok and output_tokens is not None else s.output_tokens),
            s.error_rate + _ALPHA * ((0.0 if ok else 1.0) - s.error_rate),
            s.parse_failure_rate + _ALPHA * ((1.0 if parse_failed else 0.0)
                                             - s.parse_failure_rate),
        )

    def p95_ttft_ms(self, key: str, min_samples: int = 10) -> float | None:
        """The 95th percentile of the recent times to first token, once there are enough."""
        recent = self._ttfts.get(key)
        if recent is None or len(recent) < min_samples:
            return None
        ordered = sorted(recent)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]

    def seed(self, key: str, stats: ModelStats) -> None:
        """Start from history (e.g. the ledger's recent rows) instead of from nothing."""
        self._stats[key] = stats


_EMPTY = ModelStats()
