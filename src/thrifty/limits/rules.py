"""Limit rules as configured (``limits:`` in the config file), parsed strictly, and the pure
choice of the limits that apply to one request.

    limits:
      - {resource: usd, window: day, scope: team, value: research, amount: "50.00"}
      - {resource: requests, window: minute, scope: key, value: "*", amount: 60}

Owns parsing and matching; it must not count anything (the counters do).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from thrifty.errors import ConfigError
from thrifty.limits.model import Limit, Resource, Scope, Window
from thrifty.pricing.cost import NANO

EACH = "*"
"""A rule ``value`` meaning every value of its scope, each counted separately."""

_FIELDS = "resource, window, scope, value, amount, soft_ratio"


class LimitRule(BaseModel):
    """At most ``amount`` of ``resource`` per ``window`` for ``scope`` = ``value``.
    ``amount`` is USD (a decimal string such as ``"12.50"``) for ``usd``, else a count."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resource: Resource
    window: Window
    scope: Scope = "global"
    value: str | None = Field(default=None, validate_default=True)
    """The team, key, model, provider or tag; ``'*'`` for each of them separately."""
    amount: Decimal | int
    soft_ratio: float | None = Field(default=None, gt=0, lt=1)
    """Warn (response header, log) above this share of ``amount``; never refuse."""

    @field_validator("value")
    @classmethod
    def _value_fits_scope(cls, value: str | None, info: ValidationInfo) -> str | None:
        scope = info.data.get("scope")
        if scope == "global" and value is not None:
            raise ValueError(
                "a global rule takes no value: remove it, or set scope to one of "
                "team, key, model, provider, tag"
            )
        if scope not in ("global", None) and value is None:
            raise ValueError(
                f"a {scope} rule needs a value: the {scope} it limits, or '*' for each {scope}"
            )
        if value == "":
            raise ValueError(f"must not be empty: name the {scope}, or use '*' for each")
        return value

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_is_exact(cls, amount: object, info: ValidationInfo) -> Decimal | int:
        # Before the union, so one clear message replaces "not a decimal; not an int".
        resource = info.data.get("resource")
        exact = _as_decimal(amount)
        if exact is None or not exact.is_finite() or exact < 0:
            raise ValueError('must be a number >= 0, such as 60 or "12.50" (USD)')
        if resource == "usd" and (exact / NANO) != (exact / NANO).to_integral_value():
            raise ValueError("USD amounts are counted in nano-dollars: use at most 9 decimals")
        if resource not in ("usd", None) and exact != exact.to_integral_value():
            raise ValueError(f"{resource} are counted in whole units: use an integer")
        return amount if isinstance(amount, int) else exact

    @property
    def units(self) -> int:
        """``amount`` as the counters count it: nano-USD for ``usd``, else the count."""
        exact = Decimal(self.amount)
        return int(exact / NANO) if self.resource == "usd" else int(exact)

    def limit_for(self, scope_value: str | None) -> Limit:
        return Limit(
            resource=self.resource,
            window=self.window,
            scope=self.scope,
            scope_value=scope_value,
            amount=self.units,
            soft_ratio=self.soft_ratio,
        )


def _as_decimal(amount: object) -> Decimal | None:
    if isinstance(amount, bool):
        return None
    if isinstance(amount, Decimal | int):
        return Decimal(amount)
    if isinstance(amount, float | str):
        try:
            return Decimal(str(amount).strip())  # str(): 0.1 means 0.1, not its binary twin
        except InvalidOperation:
            return None
    return None


def parse_rules(raw: Any, *, where: str = "limits") -> tuple[LimitRule, ...]:
    """Validate the ``limits:`` list. Raises ``ConfigError`` naming each bad key (as in
    ``limits[2].amount``), the value and the fix; two rules for the same resource, window,
    scope and value are an error too (which one would count?)."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"{where}: must be a list of rules ({_FIELDS}), got {type(raw).__name__}")
    rules: list[LimitRule] = []
    problems: list[str] = []
    for index, item in enumerate(raw):
        try:
            rules.append(LimitRule.model_validate(item))
        except ValidationError as exc:
            problems.extend(_describe(exc, f"{where}[{index}]"))
    if not problems:
        problems = _duplicates(rules, where)
    if problems:
        raise ConfigError("; ".join(problems))
    return tuple(rules)


def _describe(exc: ValidationError, where: str) -> list[str]:
    out = []
    for err in exc.errors():
        key = ".".join([where, *(str(part) for part in err["loc"])])
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        hint = f"; a rule takes {_FIELDS}" if err["type"] == "extra_forbidden" else ""
        message = err["msg"].removeprefix("Value error, ")
        out.append(f"{key}: {message}{shown}{hint}")
    return out


def _duplicates(rules: Sequence[LimitRule], where: str) -> list[str]:
    first: dict[tuple[str, str, str, str | None], int] = {}
    out = []
    for index, rule in enumerate(rules):
        key = (rule.resource, rule.window, rule.scope, rule.value)
        if key in first:
            out.append(
                f"{where}[{index}] repeats {where}[{first[key]}] ({_label(rule)}, "
                f"{rule.resource} per {rule.window}): keep one of them"
            )
        first.setdefault(key, index)
    return out


def _label(rule: LimitRule) -> str:
    return rule.scope if rule.value is None else f"{rule.scope}={rule.value}"


@dataclass(frozen=True, slots=True)
class RequestScope:
    """Who is asking and for what, as far as limits care."""

    key_id: str | None = None
    team: str | None = None
    model: str | None = None
    provider: str | None = None
    tags: tuple[str, ...] = ()


def applicable(rules: Iterable[LimitRule], ctx: RequestScope) -> list[Limit]:
    """The limits a request counts against, in rule order. A rule naming a value beats a
    ``'*'`` rule for the same resource, window and scope: ``key: "*"`` sets the default for
    every key, ``key: vip`` overrides it for one."""
    chosen: dict[str, tuple[bool, Limit]] = {}
    for rule in rules:
        specific = rule.value != EACH
        for value in _matching_values(rule, ctx):
            limit = rule.limit_for(value)
            seen = chosen.get(limit.id)
            if seen is None or (specific and not seen[0]):
                chosen[limit.id] = (specific, limit)
    return [limit for _, limit in chosen.values()]


def _matching_values(rule: LimitRule, ctx: RequestScope) -> list[str | None]:
    if rule.scope == "global":
        return [None]
    if rule.scope == "tag":
        candidates: Iterable[str] = dict.fromkeys(ctx.tags)  # each tag once, in order
    else:
        one = {
            "team": ctx.team, "key": ctx.key_id, "model": ctx.model, "provider": ctx.provider,
        }[rule.scope]
        candidates = () if one is None else (one,)
    return [value for value in candidates if rule.value in (EACH, value)]
