"""What a fake provider has seen and served: request and outcome counts, and the usage it
reported for every request it served completely, so a test can check that the gateway
billed exactly what the providers reported. Plain data; the server fills it in."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from thrifty.core.usage import Usage


@dataclass(frozen=True, slots=True)
class ServedUsage:
    """The usage a fake reported for one request it served successfully and completely."""

    model: str
    usage: Usage
    """In thrifty's conventions (input includes cached tokens, output includes reasoning)."""
    reported: dict[str, Any]
    """Exactly the usage object sent, in the vendor's field names."""


@dataclass(slots=True)
class FakeStats:
    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    """``ok``, ``rejected`` (auth/validation), ``aborted`` (client left), or a fault kind."""
    served: list[ServedUsage] = field(default_factory=list)

    def reset(self) -> None:
        self.requests = 0
        self.outcomes.clear()
        self.served.clear()

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "outcomes": dict(self.outcomes),
            "served": [
                {"model": s.model, "usage": asdict(s.usage), "reported": s.reported}
                for s in self.served
            ],
        }
