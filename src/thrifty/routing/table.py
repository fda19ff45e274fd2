"""The route table: every public model name and alias with its policy. Built once at
start-up by ``config.resolve``; a plain model is a one-target fallback route."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from thrifty.errors import ModelNotFound
from thrifty.providers.base import Target
from thrifty.routing.policy import Policy


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    kind: str
    """``model`` for a public model name, ``alias`` for a configured alias."""
    targets: tuple[Target, ...]
    """Every target the route may use (for listing and validation)."""
    policy: Policy
    hedge: bool = False
    """Latency-critical: race a second deployment after the first's p95 TTFT."""

    @property
    def label(self) -> str:
        return "direct" if self.kind == "model" else f"alias:{self.name}"


class RouteTable:
    def __init__(self, routes: Mapping[str, Route]) -> None:
        # Not copied: config resolution adds aliases after rules have taken the table as
        # their resolver; nothing changes it once resolution returns.
        self._routes = routes

    def resolve(self, model: str) -> Route:
        route = self._routes.get(model)
        if route is None:
            raise ModelNotFound(
                f"The model '{model}' does not exist or is not configured on this gateway; "
                "GET /v1/models lists the available ones",
                param="model",
            )
        return route

    def policy_for(self, name: str) -> Policy:
        """Rules delegate to other routes by name (the :class:`Resolver` protocol)."""
        return self.resolve(name).policy

    def names(self) -> list[str]:
        return sorted(self._routes)

    def routes(self) -> Iterable[Route]:
        return self._routes.values()

    def __contains__(self, model: str) -> bool:
        return model in self._routes

    def __len__(self) -> int:
        return len(self._routes)
