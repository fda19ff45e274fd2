"""Declarative routing rules: conditions on a request's features that pick a route to
delegate to, or a policy over a model set. Parsed strictly once (every error names the rule,
the key, the value and the fix) and compiled into closures, so a match costs a few calls and
no allocation. Pure: it neither knows the route table nor builds policies.

    rules:
      - name: images-to-vision                       # optional, shown in the decision trace
        when: {has_images: true}
        use: {models: [gpt-4o-mini, gemini-2.5-flash], policy: lowest-cost}
      - when: {estimated_tokens: {gt: 100000}}
        use: {models: [gemini-2.5-flash]}
      - when: {language: {not_in: [en]}, tags: {contains: premium}}
        use: {policy: fallback, models: [claude-sonnet-4-6]}
      - when: {any: [{metadata.team: {eq: research}}, {has_tools: true}]}
        use: {route: tools-route}
      - default: {route: cascade-default}

The first rule whose condition holds wins; the default (last, optional) catches the rest.
A mapping with several keys means all of them; ``all``, ``any`` and ``not`` combine. A bare
value means ``eq`` (``contains`` for tags), a bare list ``in``. A field with no value (language
not detected, metadata key absent, no max_tokens) fails every test except ``eq: null``,
``in: [.., null]`` and the negations ``ne`` / ``not_in`` of a value it does not hold.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from thrifty.errors import ConfigError
from thrifty.routing.features import RequestFeatures

Condition = Callable[[RequestFeatures], bool]
Getter = Callable[[RequestFeatures], Any]

_NUMBER_FIELDS = {"estimated_tokens": "estimated_input_tokens",
                  "max_output_tokens": "max_output_tokens", "message_count": "message_count",
                  "last_user_chars": "last_user_chars"}
_BOOL_FIELDS = ("has_tools", "has_images", "stream")
_STRING_FIELDS = ("response_format", "language")
_TEXT_FIELD = "text"  # the last user message: for `matches` / `contains` on what is asked
FIELDS = (*_NUMBER_FIELDS, *_BOOL_FIELDS, *_STRING_FIELDS, _TEXT_FIELD, "tags",
          "metadata.<key>")
COMBINATORS = ("all", "any", "not")
_OPERATORS = {
    "number": ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte"),
    "bool": ("eq", "ne"),
    "string": ("eq", "ne", "in", "not_in", "contains", "matches"),
    "tags": ("contains", "in", "not_in", "matches"),
}
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_LANGUAGE_CODE = re.compile(r"[a-z]{2}")


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """What a rule says to do: delegate to ``route``, or apply ``policy`` over ``models``
    (either may be None: the route's own models, the default policy)."""

    index: int
    name: str | None
    models: tuple[str, ...] | None
    policy: str | None
    route: str | None


class RuleSet:
    """Rules parsed and compiled once from configuration; ``match`` is pure and cheap."""

    def __init__(self, rules: Sequence[RuleMatch], conditions: Sequence[Condition],
                 *, needs_language: bool) -> None:
        self.rules: tuple[RuleMatch, ...] = tuple(rules)
        """Every rule's target, by index (the default last, when there is one)."""
        self.needs_language = needs_language
        """Some condition reads ``language``: extract features with language detection."""
        self._checks = tuple(zip(conditions, self.rules, strict=False))
        self._default = self.rules[-1] if len(self.rules) > len(conditions) else None

    @classmethod
    def parse(cls, raw: Sequence[Mapping[str, Any]], *, where: str) -> RuleSet:
        """Validate and compile ``raw`` (the YAML list); ConfigError names ``where[i].key``."""
        if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence):
            raise ConfigError(f"{where}: must be a list of rules, got {type(raw).__name__}; "
                              "write `- when: {...}` / `use: {...}` items")
        if not raw:
            raise ConfigError(f"{where}: no rules; add at least one rule or a `default:`")
        rules: list[RuleMatch] = []
        conditions: list[Condition] = []
        reads: set[str] = set()
        for i, item in enumerate(raw):
            rule = _validate(item, f"{where}[{i}]")
            target = rule.default if rule.default is not None else rule.use
            assert target is not None  # the model validator guarantees it
            if rules and len(rules) > len(conditions):
                raise ConfigError(f"{where}[{i}]: a rule after the default can never match; "
                                  "move the `default:` rule to the end")
            rules.append(RuleMatch(i, rule.name, _tuple(target.models), target.policy,
                                   target.route))
            if rule.when is not None:
                conditions.append(_compile(rule.when, f"{where}[{i}].when", reads))
        return cls(rules, conditions, needs_language="language" in reads)

    def match(self, f: RequestFeatures) -> RuleMatch | None:
        """The first rule whose condition holds, else the default, else None."""
        for condition, target in self._checks:
            if condition(f):
                return target
        return self._default

    def __len__(self) -> int:
        return len(self.rules)


# ---- the rule envelope (pydantic, strict) ---------------------------------------------------


class _Use(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    models: list[str] | None = Field(default=None, min_length=1)
    policy: str | None = Field(default=None, min_length=1)
    route: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_target(self) -> _Use:
        if self.route is not None and (self.models is not None or self.policy is not None):
            raise ValueError("give either `route` (delegate) or `models`/`policy`, not both")
        if self.route is None and self.models is None and self.policy is None:
            raise ValueError("say what to use: `route`, or `models` and/or `policy`")
        if self.models is not None and any(not m for m in self.models):
            raise ValueError("model names must not be empty")
        return self


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = None
    when: dict[str, Any] | None = None
    use: _Use | None = None
    default: _Use | None = None

    @model_validator(mode="after")
    def _shape(self) -> _Rule:
        if self.default is not None and (self.when is not None or self.use is not None):
            raise ValueError("a `default:` rule takes no `when`/`use`; it catches the rest")
        if self.default is None and (self.when is None or self.use is None):
            raise ValueError("a rule needs `when:` and `use:` (or is a `default:` rule)")
        return self


def _validate(item: Any, where: str) -> _Rule:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: a rule must be a mapping, got {item!r}; "
                          "write `when: {...}` and `use: {...}`")
    try:
        return _Rule.model_validate(dict(item))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        key = f"{where}.{loc}" if loc else where
        fix = {"extra_forbidden": "; remove it or check its spelling (keys: name, when, use, "
                                  "default; use: models, policy, route)",
               "list_type": "; write a list, e.g. [gpt-4o-mini]"}.get(err["type"], "")
        value = err.get("input")
        shown = "" if isinstance(value, Mapping) else f" (got {value!r})"
        problem = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{key}: {problem}{shown}{fix}") from None


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values is not None else None


# ---- conditions -> closures -----------------------------------------------------------------


def _compile(spec: Any, path: str, reads: set[str]) -> Condition:
    """A condition mapping: every key must hold (fields and combinators alike)."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"{path}: a condition is a non-empty mapping of fields and "
                          f"all/any/not, got {spec!r}; e.g. {{has_images: true}}")
    return _all_of([_compile_key(str(k), v, f"{path}.{k}", reads) for k, v in spec.items()])


def _compile_key(key: str, value: Any, path: str, reads: set[str]) -> Condition:
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{path}: `{key}` takes a non-empty list of conditions, "
                              f"got {value!r}")
        parts = [_compile(v, f"{path}[{i}]", reads) for i, v in enumerate(value)]
        return _all_of(parts) if key == "all" else _any_of(parts)
    if key == "not":
        inner = _compile(value, path, reads)
        return lambda f: not inner(f)
    kind, getter = _field(key, path)
    reads.add(key)
    ops = value if isinstance(value, Mapping) else {_shorthand(kind, value): value}
    if not ops:
        raise ConfigError(f"{path}: no operator; use one of {', '.join(_OPERATORS[kind])}")
    return _all_of([_operator(kind, key, str(op), arg, getter, f"{path}.{op}")
                    for op, arg in ops.items()])


def _shorthand(kind: str, value: Any) -> str:
    if isinstance(value, list):
        return "in"
    return "contains" if kind == "tags" else "eq"


def _field(key: str, path: str) -> tuple[str, Getter]:
    if key in _NUMBER_FIELDS:
        return "number", attrgetter(_NUMBER_FIELDS[key])
    if key in _BOOL_FIELDS:
        return "bool", attrgetter(key)
    if key in _STRING_FIELDS:
        return "string", attrgetter(key)
    if key == "tags":
        return "tags", attrgetter("tags")
    if key == _TEXT_FIELD:
        return "string", attrgetter("last_user_text")
    if key.startswith("metadata.") and len(key) > len("metadata."):
        name = key[len("metadata."):]
        return "string", lambda f: f.metadata.get(name)
    known = [*FIELDS[:-1], *COMBINATORS]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise ConfigError(f"{path}: unknown field {key!r}; {hint}fields: {', '.join(FIELDS)}; "
                      "combinators: all, any, not")


def _operator(kind: str, key: str, op: str, arg: Any, get: Getter, path: str) -> Condition:
    if op not in _OPERATORS[kind]:
        raise ConfigError(f"{path}: operator {op!r} does not apply to {key} ({kind}); "
                          f"use one of {', '.join(_OPERATORS[kind])}")
    arg = _check_operand(kind, key, op, arg, path)
    if kind == "tags":
        return _tags_test(op, arg, get)
    if op == "matches":
        rx: re.Pattern[str] = arg
        return lambda f: isinstance(v := get(f), str) and rx.search(v) is not None
    if op == "contains":
        return lambda f: isinstance(v := get(f), str) and arg in v
    return _compare(op, arg, get)


def _compare(op: str, x: Any, get: Getter) -> Condition:
    if op == "eq":
        return lambda f: bool(get(f) == x)
    if op == "ne":
        return lambda f: bool(get(f) != x)
    if op == "in":
        return lambda f: get(f) in x
    if op == "not_in":
        return lambda f: get(f) not in x
    if op == "gt":
        return lambda f: (v := get(f)) is not None and v > x
    if op == "gte":
        return lambda f: (v := get(f)) is not None and v >= x
    if op == "lt":
        return lambda f: (v := get(f)) is not None and v < x
    return lambda f: (v := get(f)) is not None and v <= x  # lte


def _tags_test(op: str, x: Any, get: Getter) -> Condition:
    if op == "contains":
        return lambda f: x in get(f)
    if op == "in":
        return lambda f: not x.isdisjoint(get(f))
    if op == "not_in":
        return lambda f: x.isdisjoint(get(f))
    rx: re.Pattern[str] = x
    return lambda f: any(rx.search(t) is not None for t in get(f))


# ---- operands ---------------------------------------------------------------------------------


def _check_operand(kind: str, key: str, op: str, arg: Any, path: str) -> Any:
    """The operand in the shape its test wants (a frozenset for in, a compiled regex for
    matches), or a ConfigError saying what is expected."""
    if op in ("in", "not_in"):
        if not isinstance(arg, list) or not arg:
            raise ConfigError(f"{path}: `{op}` takes a non-empty list, got {arg!r}; "
                              f"e.g. {{{op}: [a, b]}}")
        nullable = kind != "tags"
        items = [_check_scalar(kind, key, a, f"{path}[{i}]", nullable=nullable)
                 for i, a in enumerate(arg)]
        return frozenset(items)
    if op == "matches":
        if not isinstance(arg, str):
            raise ConfigError(f"{path}: `matches` takes a regular expression string, "
                              f"got {arg!r}")
        try:
            return re.compile(arg)
        except re.error as exc:
            raise ConfigError(f"{path}: {arg!r} is not a valid regular expression ({exc}); "
                              "quote it in YAML and escape backslashes") from None
    if op == "contains":
        if not isinstance(arg, str):
            raise ConfigError(f"{path}: `contains` takes a string, got {arg!r}")
        return arg
    if kind == "number" and op in ("gt", "gte", "lt", "lte"):
        return _check_scalar(kind, key, arg, path, nullable=False)
    return _check_scalar(kind, key, arg, path, nullable=True)


def _check_scalar(kind: str, key: str, arg: Any, path: str, *, nullable: bool) -> Any:
    if arg is None:
        if nullable:
            return None
        raise ConfigError(f"{path}: needs a value, got null")
    if kind == "number":
        if isinstance(arg, bool) or not isinstance(arg, int | float):
            raise ConfigError(f"{path}: {key} is a number, got {arg!r}; e.g. 100000")
        return arg
    if kind == "bool":
        if not isinstance(arg, bool):
            raise ConfigError(f"{path}: {key} is true or false, got {arg!r}")
        return arg
    if not isinstance(arg, str):
        raise ConfigError(f"{path}: {key} compares with strings, got {arg!r}; quote it")
    if key == "response_format" and arg not in _RESPONSE_FORMATS:
        raise ConfigError(f"{path}: response_format is one of "
                          f"{', '.join(_RESPONSE_FORMATS)} (or null), got {arg!r}")
    if key == "language" and not _LANGUAGE_CODE.fullmatch(arg):
        raise ConfigError(f"{path}: languages are ISO 639-1 codes such as en, fr, zh, "
                          f"got {arg!r}")
    return arg


# Chains of two-way closures: no generator or list is made per request.
def _all_of(parts: list[Condition]) -> Condition:
    head, *rest = parts
    if not rest:
        return head
    tail = _all_of(rest)
    return lambda f: head(f) and tail(f)


def _any_of(parts: list[Condition]) -> Condition:
    head, *rest = parts
    if not rest:
        return head
    tail = _any_of(rest)
    return lambda f: head(f) or tail(f)
