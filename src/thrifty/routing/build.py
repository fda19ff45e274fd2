"""Configuration -> policy objects. Runs once at start-up: every name, check, rule and
router is validated here so a bad route fails ``thrifty check-config``, not a request."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from thrifty.config.schema import RouteConfig, TierConfig
from thrifty.errors import ConfigError
from thrifty.providers.base import Target
from thrifty.routing.cascade import Cascade
from thrifty.routing.composite import Learned, Rules, targets_for
from thrifty.routing.estimate import Constraints
from thrifty.routing.policies import (
    EffectiveCost,
    Fallback,
    LeastBusy,
    LeastLatency,
    LowestCost,
    Weighted,
)
from thrifty.routing.policy import Policy, Resolver, Tier

RANKING = ("fallback", "weighted", "least-latency", "least-busy", "lowest-cost",
           "effective-cost")


def constraints_of(cfg: RouteConfig) -> Constraints:
    c = cfg.constraints
    return Constraints(
        providers=frozenset(c.providers) if c.providers is not None else None,
        regions=frozenset(c.regions) if c.regions is not None else None,
        require=frozenset(c.require),
    )


def ranking_policy(kind: str, targets: tuple[Target, ...], cfg: RouteConfig) -> Policy:
    cons = constraints_of(cfg)
    if kind == "weighted":
        return Weighted(targets, dict(cfg.weights), cons)
    if kind == "least-latency":
        return LeastLatency(targets, cons)
    if kind == "least-busy":
        return LeastBusy(targets, cons)
    if kind == "lowest-cost":
        return LowestCost(targets, cons)
    if kind == "effective-cost":
        return EffectiveCost(targets, cfg.latency_budget_ms, cfg.latency_price_usd_per_s, cons)
    return Fallback(targets, cons)


def build_policy(
    name: str,
    cfg: RouteConfig,
    table: Mapping[str, Target],
    resolver: Resolver,
    *,
    base_dir: Path | None = None,
) -> tuple[Policy, tuple[Target, ...]]:
    """The policy of alias ``name`` and every target it may use."""
    where = f"aliases.{name}"
    if cfg.policy in RANKING:
        targets = targets_for(cfg.models, table, f"{where}.models")
        if not targets:
            raise ConfigError(f"{where}.models: policy {cfg.policy} needs at least one model")
        return ranking_policy(cfg.policy, targets, cfg), targets
    if cfg.policy == "cascade":
        used: set[str] = set()
        tiers = tuple(_tier(t, table, f"{where}.tiers[{i}]", used)
                      for i, t in enumerate(cfg.tiers))
        tiers = tuple(t for t in tiers if t.targets)
        if not tiers:
            raise ConfigError(f"{where}.tiers: a cascade needs at least one tier whose models "
                              "this gateway serves")
        return Cascade(tiers, constraints_of(cfg)), tuple(t for tr in tiers for t in tr.targets)
    if cfg.policy == "rules":
        return _rules(name, cfg, table, resolver)
    return _learned(name, cfg, table, base_dir)


def _tier(cfg: TierConfig, table: Mapping[str, Target], where: str, used: set[str]) -> Tier:
    from thrifty.routing.checks import parse_checks

    if cfg.models and cfg.any_of:
        raise ConfigError(f"{where}: give either models or any_of, not both")
    if cfg.models:
        targets = targets_for(cfg.models, table, f"{where}.models")
    else:  # a preference list: what this gateway has that no earlier tier uses (a model
        # agreeing with itself would be no evidence at all)
        targets = tuple(table[m] for m in cfg.any_of
                        if m in table and table[m].key not in used)[: cfg.pick]
    used.update(t.key for t in targets)
    checks = parse_checks(cfg.checks, where=f"{where}.checks")
    for i, check in enumerate(checks):
        model = getattr(getattr(check, "config", None), "model", None)
        if check.name == "verifier" and model not in table:
            raise ConfigError(f"{where}.checks[{i}].verifier.model: {model!r} is not a model "
                              "this gateway serves")
    return Tier(targets, checks, cfg.max_answer_usd, cfg.fallback)


def _rules(name: str, cfg: RouteConfig, table: Mapping[str, Target],
           resolver: Resolver) -> tuple[Policy, tuple[Target, ...]]:
    from thrifty.routing.rules import RuleSet

    where = f"aliases.{name}.rules"
    ruleset = RuleSet.parse(cfg.rules, where=where)
    per_rule: dict[int, Policy] = {}
    used: list[Target] = []
    for i, rule in enumerate(ruleset.rules):
        if rule.route is not None:
            continue
        models = rule.models or tuple(cfg.models)
        targets = targets_for(models, table, f"{where}[{i}].use.models")
        if not targets:
            raise ConfigError(f"{where}[{i}].use: give models (or models on the route) or a "
                              "route to delegate to")
        kind = rule.policy or "fallback"
        if kind not in RANKING:
            raise ConfigError(f"{where}[{i}].use.policy: {kind!r} is not a ranking policy; "
                              f"use one of {', '.join(RANKING)} or delegate with `route:`")
        per_rule[i] = ranking_policy(kind, targets, cfg)
        used.extend(targets)
    return Rules(ruleset, per_rule, resolver, name), tuple({t.key: t for t in used}.values())


def _learned(name: str, cfg: RouteConfig, table: Mapping[str, Target],
             base_dir: Path | None) -> tuple[Policy, tuple[Target, ...]]:
    from thrifty.routing.learned.router import LearnedRouter

    where = f"aliases.{name}"
    if not cfg.router:
        raise ConfigError(f"{where}.router: the learned policy needs a router directory "
                          "(thrifty router train --out DIR)")
    path = Path(cfg.router).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    router = LearnedRouter.load(path)
    names = cfg.models or [m for m in router.models if m in table]
    targets = targets_for(names, table, f"{where}.models")
    unknown = [t.model for t in targets if t.model not in router.models]
    if unknown or not targets:
        raise ConfigError(f"{where}.models: the router at {path} knows "
                          f"{', '.join(router.models)}; not {', '.join(unknown) or 'none'}")
    return Learned(router, targets, cfg.quality_floor, cfg.lam, cfg.threshold,
                   constraints_of(cfg)), targets
