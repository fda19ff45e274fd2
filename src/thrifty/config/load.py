"""Reading configuration. Precedence, highest first: command-line flags, the config file
(with ``${VAR}`` / ``${VAR:-default}`` environment references), the environment's standard
provider variables (only when there is no config file), then the schema's defaults."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from thrifty.config.schema import Settings
from thrifty.errors import ConfigError
from thrifty.providers.vendors import VENDORS

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_settings(
    path: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from ``path`` (YAML or JSON), or discovered from ``env`` when ``path`` is None.
    ``overrides`` are dotted keys from the command line (``{"server.port": 8080}``)."""
    env = os.environ if env is None else env
    if path is None:
        raw: dict[str, Any] = discover_from_env(env)
    else:
        raw = _read_file(Path(path))
        raw = _interpolate(raw, env, "")
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(raw, dotted, value)
    master = env.get("THRIFTY_MASTER_KEY")
    if master and not raw.get("server", {}).get("master_key"):
        raw.setdefault("server", {})["master_key"] = master
    return parse_settings(raw, origin=str(path) if path else "environment")


def parse_settings(raw: Any, *, origin: str) -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        hint = ""
        if err["type"] == "extra_forbidden":
            hint = "; remove it or check its spelling"
        lines.append(f"{where}: {err['msg']}{shown}{hint}")
    return "; ".join(lines)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _interpolate(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{where or 'config'}: environment variable {name} is not set; "
                f"export it or write ${{{name}:-default}}"
            )

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{where}.{k}" if where else str(k))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def discover_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """A provider for every vendor whose standard key variable is set, honouring the
    vendor's base-URL variable. Self-hosted servers are added only when their base URL
    variable is set (nothing can tell that they run otherwise)."""
    providers: dict[str, Any] = {}
    for vendor in VENDORS.values():
        key = next((env[k] for k in vendor.key_env if env.get(k)), None)
        base = next((env[k] for k in vendor.base_url_env if env.get(k)), None)
        if vendor.name == "azure":
            if key and base:
                providers["azure"] = {"api_key": key, "base_url": base,
                                      "api_version": env.get("OPENAI_API_VERSION")}
            continue
        if key or (vendor.self_hosted and base):
            entry: dict[str, Any] = {}
            if key:
                entry["api_key"] = key
            if base:
                entry["base_url"] = base
            providers[vendor.name] = entry
    return {"providers": providers}


def describe_discovery(env: Mapping[str, str]) -> list[str]:
    """Human lines saying which variables were used (names only, never values)."""
    lines = []
    for vendor in VENDORS.values():
        keys = [k for k in vendor.key_env if env.get(k)]
        bases = [k for k in vendor.base_url_env if env.get(k)]
        if keys or (vendor.self_hosted and bases):
            where = ", ".join(keys + bases)
            lines.append(f"{vendor.name}: from {where}")
    return lines
