"""What ``--policy`` names: a shipped policy (``auto``, or a ranking policy such as
``lowest-cost`` over the pool's models), a config file (its ``aliases`` entry named by
``--route``, else ``auto``, else its only alias; or a bare route mapping), or a directory
written by ``thrifty router train``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from thrifty.config.schema import RouteConfig
from thrifty.errors import ConfigError
from thrifty.routing.build import RANKING
from thrifty.routing.defaults import shipped_routes

SHIPPED = ("auto",)


Routes = dict[str, RouteConfig]


def load_policy(policy: str, models: tuple[str, ...], route: str | None = None,
                **learned: Any) -> tuple[Routes, str, Path | None]:
    """(every route the policy needs, the one under test, the directory relative paths in
    them resolve against)."""
    if policy in SHIPPED:
        return shipped_routes(policy), policy, None
    if policy in RANKING:
        cfg = RouteConfig.model_validate({"policy": policy, "models": list(models)})
        return {policy: cfg}, policy, None
    path = Path(policy).expanduser()
    if path.is_dir():
        opts = {k: v for k, v in learned.items() if v is not None}
        return {"learned": RouteConfig(policy="learned", router=str(path), **opts)}, \
            "learned", None
    if path.is_file():
        routes, name = _from_file(path, route)
        return routes, name, path.parent
    raise ConfigError(f"--policy {policy!r}: not a shipped policy ({', '.join(SHIPPED + RANKING)}),"
                      " a config file or a router directory")


def _from_file(path: Path, route: str | None) -> tuple[Routes, str]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read it as YAML/JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    aliases = raw.get("aliases")
    if isinstance(aliases, dict):
        name = route or ("auto" if "auto" in aliases else None)
        if name is None and len(aliases) == 1:
            name = next(iter(aliases))
        if name is None or name not in aliases:
            raise ConfigError(f"{path}: say which alias to replay with --route "
                              f"(it has {', '.join(aliases)})")
        return {k: _route(v, path, k) for k, v in aliases.items()}, name
    return {"policy": _route(raw, path, "policy")}, "policy"


def _route(raw: Any, path: Path, name: str) -> RouteConfig:
    if isinstance(raw, list):
        raw = {"policy": "fallback", "models": raw}
    try:
        return RouteConfig.model_validate(raw)
    except Exception as exc:  # pydantic's error names the key
        raise ConfigError(f"{path}: aliases.{name}: {exc}") from None
