"""Turning validated settings into runtime objects: providers with their keys and base
URLs, every public model as a priced :class:`Target`, aliases, and the route table.
A model with no known price is refused here, at load time, never priced at $0."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from thrifty.config.schema import ModelConfig, ProviderConfig, RouteConfig, Settings
from thrifty.errors import ConfigError
from thrifty.pricing.catalog import Catalog, load_catalog
from thrifty.pricing.price import CAPABILITIES, ModelInfo, Price
from thrifty.providers.base import Target
from thrifty.providers.vendors import VENDORS, Vendor
from thrifty.routing.build import build_policy
from thrifty.routing.composite import Rules, targets_for
from thrifty.routing.defaults import usable_shipped_routes
from thrifty.routing.policies import Deployments, Direct, Fallback
from thrifty.routing.table import Route, RouteTable

_DEFAULT_CONTEXT = 8192
_DEFAULT_MAX_OUTPUT = 4096


@dataclass(frozen=True, slots=True)
class ResolvedProvider:
    name: str
    vendor: Vendor
    base_url: str
    api_key: str | None = field(repr=False)
    api_version: str | None
    headers: Mapping[str, str]
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    providers: Mapping[str, ResolvedProvider]
    routes: RouteTable
    catalog: Catalog
    notes: tuple[str, ...] = ()


def resolve(settings: Settings, *, base_dir: Path | None = None) -> Runtime:
    catalog_files = [_relative(p, base_dir) for p in settings.pricing.catalogs]
    catalog = load_catalog(catalog_files)
    notes: list[str] = []
    providers = {name: _provider(name, cfg) for name, cfg in settings.providers.items()}
    targets: dict[str, Target] = {}
    deployments: dict[str, tuple[Target, ...]] = {}
    for public, mcfg in settings.models.items():
        group = _configured_targets(public, mcfg, providers, catalog)
        targets[public] = group[0]
        if len(group) > 1:
            deployments[public] = group
    for prov in providers.values():
        listed = _catalog_targets(prov, catalog)
        if not listed and not any(prov.name in _providers_of(m) for m in
                                  settings.models.values()):
            notes.append(f"provider {prov.name} has no models: list them under `models:`")
        for target in listed:
            qualified = f"{prov.name}/{target.upstream_model}"
            targets.setdefault(qualified, replace(target, model=qualified))
            targets.setdefault(target.upstream_model, target)
    routes = {name: Route(name, "model", (t,), Direct(t)) for name, t in targets.items()}
    for name, group in deployments.items():
        routes[name] = Route(name, "model", group, Deployments(group),
                             hedge=settings.models[name].hedge)
    table = RouteTable(routes)
    aliases: dict[str, list[str] | RouteConfig] = {}
    if "auto" not in settings.aliases and "auto" not in routes:
        aliases.update(usable_shipped_routes(targets))
    aliases.update(settings.aliases)
    for alias, spec in aliases.items():
        if alias in targets:
            raise ConfigError(f"aliases.{alias}: the name is already a model; pick another")
        if isinstance(spec, list):
            members = targets_for(spec, targets, f"aliases.{alias}")
            routes[alias] = Route(alias, "alias", members, Fallback(members))
        else:
            policy, used = build_policy(alias, spec, targets, table, base_dir=base_dir)
            routes[alias] = Route(alias, "alias", used, policy, hedge=spec.hedge)
    for name, route in routes.items():  # rules may delegate to routes defined after them
        _check_delegations(name, route, routes)
    from thrifty.limits.rules import parse_rules

    parse_rules(settings.limits.rules, where="limits.rules")  # fail at load, not per request
    return Runtime(settings, providers, table, catalog, tuple(notes))


def _providers_of(m: ModelConfig) -> set[str]:
    return {m.provider} if m.provider else {d.provider for d in m.deployments}


def _check_delegations(name: str, route: Route, routes: Mapping[str, Route]) -> None:
    policy = route.policy
    if isinstance(policy, Rules):
        for rule in policy.rules.rules:
            if rule.route is not None and rule.route not in routes:
                raise ConfigError(f"aliases.{name}.rules: rule delegates to unknown route "
                                  f"{rule.route!r}")


def _relative(path: str, base_dir: Path | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base_dir is None else base_dir / p


def _provider(name: str, cfg: ProviderConfig) -> ResolvedProvider:
    vendor_name = cfg.vendor or name
    vendor = VENDORS.get(vendor_name)
    if vendor is None:
        known = ", ".join(sorted(VENDORS))
        raise ConfigError(
            f"providers.{name}.vendor: unknown vendor {vendor_name!r}; use one of {known} "
            "(any OpenAI-compatible server works as vendor: vllm with a base_url)"
        )
    base_url = (cfg.base_url or vendor.base_url).rstrip("/")
    if not base_url:
        raise ConfigError(f"providers.{name}.base_url: required for vendor {vendor.name}")
    key = cfg.api_key.get_secret_value() if cfg.api_key else None
    if vendor.needs_key and not key:
        env = " or ".join(vendor.key_env) or "a key"
        raise ConfigError(
            f"providers.{name}.api_key: vendor {vendor.name} needs a key; "
            f"set api_key: ${{{vendor.key_env[0] if vendor.key_env else 'KEY'}}} (from {env})"
        )
    return ResolvedProvider(name, vendor, base_url, key, cfg.api_version, dict(cfg.headers),
                            cfg.region)


def _configured_targets(
    public: str, mcfg: ModelConfig, providers: Mapping[str, ResolvedProvider], catalog: Catalog
) -> tuple[Target, ...]:
    """One target per deployment (the single ``provider`` form is one deployment)."""
    if mcfg.provider and mcfg.deployments:
        raise ConfigError(f"models.{public}: give either provider or deployments, not both")
    if not mcfg.provider and not mcfg.deployments:
        raise ConfigError(f"models.{public}: say which provider serves it (provider: NAME) "
                          "or list deployments")
    specs = ([(mcfg.provider, mcfg.model, mcfg.deployment, 1.0, f"models.{public}")]
             if mcfg.provider else
             [(d.provider, d.model or mcfg.model, d.deployment, d.weight,
               f"models.{public}.deployments[{i}]") for i, d in enumerate(mcfg.deployments)])
    out = []
    for provider, model, deployment, weight, where in specs:
        prov = providers.get(provider or "")
        if prov is None:
            raise ConfigError(
                f"{where}.provider: {provider!r} is not under `providers:`; "
                f"configured: {', '.join(sorted(providers)) or 'none'}"
            )
        upstream = model or public
        known = catalog.get(prov.vendor.catalog_provider, upstream)
        info = _model_info(public, mcfg, prov, upstream, known)
        if prov.vendor.name == "azure" and not deployment:
            raise ConfigError(f"{where}.deployment: Azure OpenAI needs the deployment name")
        out.append(replace(_target(public, prov, upstream, info, deployment=deployment),
                           weight=weight))
    keys = [t.key for t in out]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"models.{public}.deployments: two deployments are the same place "
                          f"({', '.join(keys)}); give each its own provider or deployment")
    return tuple(out)


def _model_info(
    public: str, mcfg: ModelConfig, prov: ResolvedProvider, upstream: str, known: ModelInfo | None
) -> ModelInfo:
    if mcfg.price == 0:
        price = Price.free()
    elif mcfg.price is not None:
        p = mcfg.price
        price = Price.of(p.input, p.output, p.cached_input, p.cache_write)
    elif known is not None:
        price = known.price
    else:
        raise ConfigError(
            f"models.{public}: no known price for {prov.vendor.catalog_provider}/{upstream}. "
            "Add `price: {input: <USD per 1M>, output: <USD per 1M>}` to the model, "
            "`price: 0` for a self-hosted model, or import a price map with "
            "`thrifty prices import` and list it under pricing.catalogs"
        )
    caps = mcfg.capabilities
    if caps is not None and not set(caps) <= CAPABILITIES:
        bad = sorted(set(caps) - CAPABILITIES)
        raise ConfigError(
            f"models.{public}.capabilities: unknown {bad}; use any of {sorted(CAPABILITIES)}"
        )
    return ModelInfo(
        provider=prov.vendor.catalog_provider,
        model=upstream,
        price=price,
        context_window=mcfg.context_window or (known.context_window if known else _DEFAULT_CONTEXT),
        max_output=mcfg.max_output or (known.max_output if known else _DEFAULT_MAX_OUTPUT),
        capabilities=frozenset(caps) if caps is not None else (
            known.capabilities if known else frozenset({"streaming", "tools"})
        ),
        source=known.source if known and mcfg.price is None else "config",
    )


def _catalog_targets(prov: ResolvedProvider, catalog: Catalog) -> list[Target]:
    if prov.vendor.self_hosted or prov.vendor.name == "azure":
        return []  # their models are whatever the operator deployed: list them explicitly
    return [
        _target(info.model, prov, info.model, info)
        for info in catalog.models(prov.vendor.catalog_provider)
    ]


def _target(
    public: str, prov: ResolvedProvider, upstream: str, info: ModelInfo,
    *, deployment: str | None = None,
) -> Target:
    v = prov.vendor
    return Target(
        model=public, provider=prov.name, wire=v.wire, upstream_model=upstream,
        base_url=prov.base_url, info=info, api_key=prov.api_key, auth=v.auth,
        headers=prov.headers, drop_params=v.drop_params, rename_params=v.rename_params,
        api_version=prov.api_version, deployment=deployment, region=prov.region,
    )
