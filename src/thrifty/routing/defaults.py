"""The shipped routing configuration: the ``auto`` route (and the sub-routes it hands work
to) that every gateway serves unless its config defines ``auto`` itself. Tiers are
preference lists (``any_of``) resolved against the models this gateway actually serves, so
one file works for any set of providers, and for the replayed models of
``thrifty bench routing --policy auto``."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources

import yaml

from thrifty.config.schema import RouteConfig
from thrifty.providers.base import Target


@cache
def shipped_routes(name: str = "auto") -> dict[str, RouteConfig]:
    text = resources.files("thrifty.routing").joinpath(f"data/{name}.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return {k: RouteConfig.model_validate(v) for k, v in raw["routes"].items()}


def usable_shipped_routes(targets: Mapping[str, Target]) -> dict[str, RouteConfig]:
    """The shipped routes when this gateway serves, for every cascade among them, a model
    for the final tier and for at least one cheap tier; otherwise none (no ``auto``)."""
    routes = shipped_routes()
    for route in routes.values():
        if route.policy != "cascade":
            continue
        served = [any(m in targets for m in (*t.models, *t.any_of)) for t in route.tiers]
        if not served[-1] or sum(served) < 2:
            return {}
    return dict(routes)
