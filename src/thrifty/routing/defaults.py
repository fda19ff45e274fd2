"""The shipped routing configuration: the ``auto`` route every gateway serves unless its
config defines one. Its tiers are preference lists (``any_of``) resolved against the models
this gateway actually serves, so one file works for any set of providers (and for the
replayed models of ``thrifty bench routing --policy auto``)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources

import yaml

from thrifty.config.schema import RouteConfig
from thrifty.providers.base import Target


@cache
def shipped_route(name: str) -> RouteConfig:
    text = resources.files("thrifty.routing").joinpath(f"data/{name}.yaml").read_text("utf-8")
    return RouteConfig.model_validate(yaml.safe_load(text))


def shipped_auto_route(targets: Mapping[str, Target]) -> RouteConfig | None:
    """The shipped ``auto`` cascade when this gateway serves models for at least its cheap
    tier and its final tier; None otherwise (no ``auto`` route then)."""
    route = shipped_route("auto")
    usable = [t for t in route.tiers if any(m in targets for m in (*t.models, *t.any_of))]
    if len(usable) < 2 or not any(m in targets for m in route.tiers[-1].any_of):
        return None
    return route.model_copy(update={"tiers": usable})
