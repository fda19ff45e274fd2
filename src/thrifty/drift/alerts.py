"""A drift alert: one signal of one deployment moved away from its baseline. Plain data,
read by the admin API, the dashboard and the metrics; the monitor opens and clears them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from thrifty.config.drift import SignalName
from thrifty.drift.detectors import Side


@dataclass(slots=True)
class DriftAlert:
    id: str
    provider: str
    model: str
    """The upstream model (or Azure deployment): with ``provider``, the deployment's key."""
    signal: SignalName
    direction: Side
    baseline: float
    """The signal's level before the change, in natural units (ms, tokens, a rate)."""
    current: float
    """Its level since the change began."""
    detected_at: float
    demoted: bool
    """Whether this alert demoted the model in routing (until ``cleared_at``)."""
    samples: int = 0
    """Samples since the change began, when it was detected."""
    cleared_at: float | None = None

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "provider": self.provider, "model": self.model,
            "signal": self.signal, "direction": self.direction,
            "baseline": _round(self.baseline), "current": _round(self.current),
            "detected_at": self.detected_at, "demoted": self.demoted,
            "cleared_at": self.cleared_at,
        }

    def describe(self) -> str:
        """One line for logs: ``openai/gpt-4o-mini latency_ms up: 210 -> 1050``."""
        return (f"{self.key} {self.signal} {self.direction}: {_round(self.baseline)} -> "
                f"{_round(self.current)}")


def _round(value: float) -> float:
    """Four significant digits: enough to read, stable to compare."""
    return float(f"{value:.4g}")
