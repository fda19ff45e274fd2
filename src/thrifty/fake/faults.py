"""Which fault, if any, a fake injects into one request: drawn with probability
``error_rate`` from a seeded ``random.Random``, or forced by the ``x-fake-fault`` header so a
test is deterministic. This module only decides; the server and the wires carry faults out.

Kinds: ``429`` rate limited (with ``retry-after``), ``500``, ``503``, ``529`` (Anthropic's
overloaded; 503 on the other wires), ``timeout`` (accept, then stay silent), ``reset`` (close
the connection without a response), ``malformed`` (200 with an invalid body or stream line),
``cut`` (a stream or body that stops early).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

STATUS_FAULTS = ("429", "500", "503", "529")
ALL_FAULTS: tuple[str, ...] = (*STATUS_FAULTS, "timeout", "reset", "malformed", "cut")
FAULT_HEADER = "x-fake-fault"
LATENCY_HEADER = "x-fake-latency-ms"


class UnknownFault(ValueError):
    """A fault kind that is not in :data:`ALL_FAULTS`."""


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """The kinds, validated and de-duplicated in order."""
    out: list[str] = []
    for raw in kinds:
        kind = raw.strip().lower()
        if kind not in ALL_FAULTS:
            raise UnknownFault(f"unknown fault {raw!r}; choose from {', '.join(ALL_FAULTS)}")
        if kind not in out:
            out.append(kind)
    return tuple(out)


class FaultPlan:
    __slots__ = ("_kinds", "_rate", "_rng")

    def __init__(self, kinds: Sequence[str], error_rate: float, seed: int) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be within [0, 1], got {error_rate}")
        self._kinds = check_kinds(kinds)
        self._rate = error_rate
        self._rng = random.Random(f"faults-{seed}")

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        """Change the fault rate mid-run (``POST /_fake/behaviour``), keeping the draws."""
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"error_rate must be within [0, 1], got {value}")
        self._rate = value

    def pick(self, forced: str | None) -> str | None:
        """The fault for this request: the forced kind, a random one, or None.

        A forced header of ``none`` disables random faults for that request.
        """
        if forced:
            kind = forced.strip().lower()
            if kind == "none":
                return None
            check_kinds([kind])
            return kind
        if self._rate <= 0.0 or not self._kinds:
            return None
        # Two draws always, so one request's outcome does not shift the next one's kind.
        hit = self._rng.random() < self._rate
        kind = self._rng.choice(self._kinds)
        return kind if hit else None
