"""Property: for any valid rule set and any feature values, evaluation never raises and
agrees with a naive interpreter of the same YAML (the compiled closures are an
optimisation, not a second semantics)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thrifty.routing.features import RequestFeatures
from thrifty.routing.rules import RuleSet

NUMBER = {"estimated_tokens": "estimated_input_tokens", "max_output_tokens":
          "max_output_tokens", "message_count": "message_count",
          "last_user_chars": "last_user_chars"}
BOOL = ["has_tools", "has_images", "stream"]
META_KEYS = ["team", "app", ""]
LANGS = ["en", "fr", "zh", "de"]
FORMATS = ["text", "json_object", "json_schema"]
REGEXES = ["^a", "b$", ".", "x+y", "", "[0-9]{2}"]

# Small pools, so that features and operands often coincide and every branch is exercised.
small = st.integers(0, 4)
numbers = st.one_of(small, small, st.integers(-5, 10**6), st.floats(-1e6, 1e12, allow_nan=False))
texts = st.sampled_from(["", "a", "ab", "b", "xy"]) | st.text(alphabet="abxy01 ", max_size=4)

features = st.builds(
    RequestFeatures,
    estimated_input_tokens=small | st.integers(0, 10**9),
    max_output_tokens=st.none() | small | st.integers(1, 10**6),
    has_tools=st.booleans(),
    has_images=st.booleans(),
    response_format=st.none() | st.sampled_from(FORMATS),
    stream=st.booleans(),
    message_count=small | st.integers(0, 500),
    last_user_text=st.text(max_size=6),
    system_text_chars=st.integers(0, 10**6),
    metadata=st.dictionaries(st.sampled_from(META_KEYS) | st.text(max_size=3), texts,
                             max_size=3),
    tags=st.lists(texts, max_size=4).map(tuple),
    language=st.none() | st.sampled_from(LANGS) | st.text(max_size=3),
)


def operand(field: str) -> st.SearchStrategy[Any]:
    if field in NUMBER:
        return numbers
    if field in BOOL:
        return st.booleans()
    if field == "language":
        return st.sampled_from(LANGS)
    if field == "response_format":
        return st.sampled_from(FORMATS)
    return texts


OPERATORS = {
    "number": ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte"],
    "bool": ["eq", "ne"],
    "string": ["eq", "ne", "in", "not_in", "contains", "matches"],
    "tags": ["contains", "in", "not_in", "matches"],
}
FIELDS = {"number": list(NUMBER), "bool": BOOL, "tags": ["tags"],
          "string": ["language", "response_format", *(f"metadata.{k or 'x'}" for k in META_KEYS)]}
KIND_OPS = [(kind, op) for kind, ops in OPERATORS.items() for op in ops]


def operand_for(draw: st.DrawFn, kind: str, field: str, op: str) -> Any:
    value = operand(field)
    nullable = kind != "tags" and op in ("eq", "ne", "in", "not_in")
    if op in ("in", "not_in"):
        item = st.none() | value if nullable else value
        return draw(st.lists(item, min_size=1, max_size=3))
    if op == "matches":
        return draw(st.sampled_from(REGEXES))
    if op == "contains":
        return draw(texts)
    return draw(st.none() | value if nullable else value)


@st.composite
def one_test(draw: st.DrawFn, kind: str | None = None, op: str | None = None
             ) -> tuple[str, Any]:
    if kind is None or op is None:
        kind, op = draw(st.sampled_from(KIND_OPS))
    field = draw(st.sampled_from(FIELDS[kind]))
    return field, {op: operand_for(draw, kind, field, op)}


leaf = st.lists(one_test(), min_size=1, max_size=3, unique_by=lambda t: t[0]).map(dict)
conditions = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c}),
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c}),
        inner.map(lambda c: {"not": c}),
    ),
    max_leaves=6,
)
rule_lists = st.tuples(
    st.lists(conditions, min_size=1, max_size=5),
    st.booleans(),
).map(lambda t: [{"when": c, "use": {"route": f"r{i}"}} for i, c in enumerate(t[0])]
      + ([{"default": {"route": "fallback"}}] if t[1] else []))


# ---- a naive interpreter of the same YAML --------------------------------------------------

def value_of(f: RequestFeatures, field: str) -> Any:
    if field.startswith("metadata."):
        return f.metadata.get(field[len("metadata."):])
    if field == "last_user_chars":
        return len(f.last_user_text)
    return getattr(f, NUMBER.get(field, field))


def op_holds(field: str, op: str, arg: Any, v: Any) -> bool:
    if field == "tags":
        if op == "contains":
            return arg in v
        if op == "in":
            return any(t in arg for t in v)
        if op == "not_in":
            return all(t not in arg for t in v)
        return any(re.search(arg, t) for t in v)
    if op == "eq":
        return bool(v == arg)
    if op == "ne":
        return bool(v != arg)
    if op == "in":
        return v in arg
    if op == "not_in":
        return v not in arg
    if op == "contains":
        return isinstance(v, str) and arg in v
    if op == "matches":
        return isinstance(v, str) and re.search(arg, v) is not None
    if v is None:
        return False
    return bool({"gt": v > arg, "gte": v >= arg, "lt": v < arg, "lte": v <= arg}[op])


def evaluate(cond: dict[str, Any], f: RequestFeatures) -> bool:
    for key, spec in cond.items():
        if key == "all":
            ok = all(evaluate(c, f) for c in spec)
        elif key == "any":
            ok = any(evaluate(c, f) for c in spec)
        elif key == "not":
            ok = not evaluate(spec, f)
        else:
            ok = all(op_holds(key, op, arg, value_of(f, key)) for op, arg in spec.items())
        if not ok:
            return False
    return True


def first_match(raw: list[dict[str, Any]], f: RequestFeatures) -> int | None:
    for i, rule in enumerate(raw):
        if "default" in rule or evaluate(rule["when"], f):
            return i
    return None


@settings(max_examples=100, deadline=None)
@given(raw=rule_lists, f=features)
def test_evaluation_never_raises_and_agrees_with_the_interpreter(
    raw: list[dict[str, Any]], f: RequestFeatures
) -> None:
    rules = RuleSet.parse(raw, where="p")
    got = rules.match(f)
    expected = first_match(raw, f)
    assert (got.index if got is not None else None) == expected
    if got is not None:
        rule = raw[got.index]
        assert got.route == (rule["use"] if "use" in rule else rule["default"])["route"]
    assert rules.needs_language == ("'language'" in repr(raw))


@settings(max_examples=100, deadline=None)
@given(f=features)
def test_the_documented_example_never_raises(f: RequestFeatures) -> None:
    rules = RuleSet.parse([
        {"when": {"has_images": True}, "use": {"models": ["a", "b"], "policy": "lowest-cost"}},
        {"when": {"estimated_tokens": {"gt": 100000}}, "use": {"models": ["b"]}},
        {"when": {"language": {"not_in": ["en"]}, "tags": {"contains": "premium"}},
         "use": {"policy": "fallback", "models": ["c"]}},
        {"when": {"any": [{"metadata.team": {"eq": "research"}}, {"has_tools": True}]},
         "use": {"route": "tools"}},
        {"default": {"route": "cascade"}},
    ], where="p")
    match = rules.match(f)
    assert match is not None
    assert (match.index == 0) == f.has_images


@pytest.mark.parametrize(("kind", "op"), KIND_OPS)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), f=features)
def test_each_operator_agrees_with_the_interpreter(kind: str, op: str, data: st.DataObject,
                                                   f: RequestFeatures) -> None:
    field, spec = data.draw(one_test(kind, op))
    rules = RuleSet.parse([{"when": {field: spec}, "use": {"route": "hit"}}], where="p")
    assert (rules.match(f) is not None) == evaluate({field: spec}, f)
