"""The route table: every public model name and alias, mapped to its ordered targets.
Pure lookup; built once at start-up by ``config.resolve``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from thrifty.errors import ModelNotFound
from thrifty.providers.base import Target


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    kind: str
    """``model`` for a public model name, ``alias`` for a configured alias."""
    targets: tuple[Target, ...]

    @property
    def label(self) -> str:
        return "direct" if self.kind == "model" else f"alias:{self.name}"


class RouteTable:
    def __init__(self, routes: Mapping[str, Route]) -> None:
        self._routes = dict(routes)

    def resolve(self, model: str) -> Route:
        route = self._routes.get(model)
        if route is None:
            raise ModelNotFound(
                f"The model '{model}' does not exist or is not configured on this gateway; "
                "GET /v1/models lists the available ones",
                param="model",
            )
        return route

    def names(self) -> list[str]:
        return sorted(self._routes)

    def routes(self) -> Iterable[Route]:
        return self._routes.values()

    def __contains__(self, model: str) -> bool:
        return model in self._routes

    def __len__(self) -> int:
        return len(self._routes)
