"""Deterministic JSON values that satisfy a JSON schema: the arguments of fake tool calls and
the bodies of fake structured outputs. Covers what function and response schemas use (types,
required, enum/const, anyOf/oneOf/allOf, local ``$ref``, array/string/number bounds, and
Gemini's upper-case OpenAPI types). It is a generator, not a validator, and does no I/O."""

from __future__ import annotations

import math
import random
from typing import Any

_FORMATS = {
    "date": "2024-05-17",
    "date-time": "2024-05-17T12:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/item",
    "url": "https://example.com/item",
    "uuid": "3f6c2a8e-1b7d-4c55-9e0a-2f4b8d6e1a90",
    "ipv4": "192.0.2.1",
}
_STRINGS = ("Paris", "blue", "alpha", "sample", "London", "quick", "report", "green", "Tokyo")
_MAX_DEPTH = 6


def sample_value(schema: Any, rng: random.Random) -> Any:
    """A JSON value valid for ``schema``, drawn from ``rng`` (same rng state, same value)."""
    return _Sampler(schema, rng).value(schema, 0)


def _number(value: Any) -> float | None:
    # Gemini's proto JSON spells int64 bounds as strings ("minItems": "1").
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _schema_type(schema: dict[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if str(t).lower() != "null"), "null")
    if isinstance(declared, str):
        return declared.lower()
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


class _Sampler:
    __slots__ = ("_rng", "_root")

    def __init__(self, root: Any, rng: random.Random) -> None:
        self._root = root
        self._rng = rng

    def value(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, dict):
            return "value"  # `true` / `{}`: anything is valid
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._rng.choice(enum)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return self.value(_first_not_null(options), depth + 1)
        merged = self._merge_all_of(schema)
        kind = _schema_type(merged)
        if kind == "object":
            return self._object(merged, depth)
        if kind == "array":
            return self._array(merged, depth)
        if kind in ("integer", "number"):
            return self._numeric(merged, integer=kind == "integer")
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(merged)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        hops = 0
        while isinstance(ref, str) and ref.startswith("#") and hops < 16:
            node: Any = self._root
            for part in filter(None, ref[1:].split("/")):
                key = part.replace("~1", "/").replace("~0", "~")
                node = node.get(key, {}) if isinstance(node, dict) else {}
            schema = node if isinstance(node, dict) else {}
            ref = schema.get("$ref")
            hops += 1
        return schema

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        if not isinstance(props, dict) or depth >= _MAX_DEPTH:
            return {}
        required = schema.get("required")
        required_names = {r for r in required if isinstance(r, str)} if isinstance(
            required, list) else set()
        out: dict[str, Any] = {}
        for name, sub in props.items():
            # Optional properties appear about half the time, as a model would choose.
            if name in required_names or self._rng.random() < 0.5:
                out[name] = self.value(sub, depth + 1)
        return out

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        low = int(_number(schema.get("minItems")) or 0)
        high_raw = _number(schema.get("maxItems"))
        high = max(low, int(high_raw) if high_raw is not None else 3)
        count = low if depth >= _MAX_DEPTH else self._rng.randint(max(low, min(1, high)), high)
        items = schema.get("items", {})
        return [self.value(items, depth + 1) for _ in range(count)]

    def _numeric(self, schema: dict[str, Any], *, integer: bool) -> int | float:
        low = _number(schema.get("minimum"))
        high = _number(schema.get("maximum"))
        ex_low = _number(schema.get("exclusiveMinimum"))
        ex_high = _number(schema.get("exclusiveMaximum"))
        step = 1.0 if integer else 0.01
        if ex_low is not None:
            low = ex_low + step if low is None else max(low, ex_low + step)
        if ex_high is not None:
            high = ex_high - step if high is None else min(high, ex_high - step)
        if low is None:
            low = 0.0 if high is None or high >= 0 else high - 100
        if high is None or high < low:
            high = low + 100
        if integer:
            first = math.ceil(low)
            return self._rng.randint(first, max(first, math.floor(high)))
        return round(self._rng.uniform(low, high), 2) if high - low >= 0.02 else low

    def _string(self, schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        text = _FORMATS.get(fmt, "") if isinstance(fmt, str) else ""
        if not text:
            text = self._rng.choice(_STRINGS)
        min_len = int(_number(schema.get("minLength")) or 0)
        max_raw = _number(schema.get("maxLength"))
        if len(text) < min_len:
            text = text + "x" * (min_len - len(text))
        if max_raw is not None and len(text) > int(max_raw):
            text = text[: int(max_raw)]
        return text

    def _merge_all_of(self, schema: dict[str, Any]) -> dict[str, Any]:
        parts = schema.get("allOf")
        if not isinstance(parts, list):
            return schema
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for raw in parts:
            part = self._resolve(raw) if isinstance(raw, dict) else {}
            for key, value in part.items():
                if key == "properties" and isinstance(value, dict):
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged


def _first_not_null(options: list[Any]) -> Any:
    for option in options:
        if not (isinstance(option, dict) and str(option.get("type", "")).lower() == "null"):
            return option
    return options[0]
