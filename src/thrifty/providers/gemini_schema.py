"""JSON Schema -> Gemini's OpenAPI-subset ``Schema``: keep the keys Gemini accepts, inline
``$ref``, fold nullable unions, upper-case types. Pure; used for tool parameters and
``responseSchema``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thrifty.providers.openai_shapes import as_dict, as_list

_SCHEMA_KEYS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
})
_NESTED = frozenset({"type", "properties", "items", "anyOf"})  # rebuilt, not copied
_FORMATS = frozenset({"enum", "date-time", "float", "double", "int32", "int64"})
_MAX_SCHEMA_DEPTH = 32  # bounds recursive $ref expansion




def _schema_type(schema: Mapping[str, Any], out: dict[str, Any]) -> None:
    """JSON-schema ``type`` (a string or a list with "null") as Gemini's upper-case enum."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else []
    real = [k.upper() for k in kinds if isinstance(k, str) and k != "null"]
    if len(real) < len(kinds):
        out["nullable"] = True
    out.pop("type", None)
    if len(real) == 1:
        out["type"] = real[0]
    elif real:
        out["anyOf"] = [{"type": k} for k in real]


def gemini_schema(schema: Any, defs: Mapping[str, Any] | None = None, depth: int = 0) -> (
    dict[str, Any]
):
    """A JSON schema cut down to what Gemini accepts: $refs inlined, nullable unions folded
    into ``nullable``, string ``const`` as ``enum``, unknown keywords dropped."""
    if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
        return {}
    if defs is None:
        defs = {**as_dict(schema.get("definitions")), **as_dict(schema.get("$defs"))}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        inlined = {**as_dict(defs.get(ref.rsplit("/", 1)[-1])),
                   **{k: v for k, v in schema.items() if k != "$ref"}}
        return gemini_schema(inlined, defs, depth + 1)
    out = {k: v for k, v in schema.items() if k in _SCHEMA_KEYS and k not in _NESTED}
    _schema_type(schema, out)
    if isinstance(schema.get("properties"), dict) and schema["properties"]:
        # (an empty properties object is left out: Gemini rejects it)
        out["properties"] = {name: gemini_schema(sub, defs, depth + 1)
                             for name, sub in schema["properties"].items()}
    if isinstance(schema.get("items"), dict):
        out["items"] = gemini_schema(schema["items"], defs, depth + 1)
    variants = [v for v in as_list(schema.get("anyOf")) if isinstance(v, dict)]
    if variants:
        kept = [gemini_schema(v, defs, depth + 1) for v in variants if v.get("type") != "null"]
        if len(kept) < len(variants):
            out["nullable"] = True
        out.pop("anyOf", None)
        if len(kept) == 1:
            out = {**kept[0], **{k: v for k, v in out.items() if k != "type"}}
        elif kept:
            out["anyOf"] = kept
    if isinstance(schema.get("const"), str):
        out["enum"] = [schema["const"]]
    if "enum" in out and not all(isinstance(v, str) for v in as_list(out["enum"])):
        del out["enum"]  # Gemini enums are strings only
    if out.get("format") not in _FORMATS:
        out.pop("format", None)
    return out


