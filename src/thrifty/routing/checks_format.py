"""The format check's rules: an answer honours the request's ``response_format`` (JSON,
JSON schema) and its tools (arguments are JSON objects valid against the tool's
parameters). Pure; schemas are compiled once and cached. Uses ``jsonschema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, SchemaError, validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from referencing.exceptions import Unresolvable

from thrifty.routing.answer import Answer, ToolCall

_DETAIL_CHARS = 160


def format_problems(answer: Answer, request: Mapping[str, Any], *, json_mode: bool = True,
                    json_schema: bool = True, tool_calls: bool = True) -> list[str] | None:
    """What is wrong with the answer's format, ``[]`` when nothing; None when the request
    asked for no format (no JSON mode, no tools) and the answer called no tool."""
    fmt = request.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    wants_json = kind in ("json_object", "json_schema")
    tools = _tool_schemas(request.get("tools"))
    if not wants_json and tools is None and not answer.tool_calls:
        return None
    problems: list[str] = []
    only_tools = bool(answer.tool_calls) and not answer.text.strip()
    if json_mode and wants_json and not only_tools:
        schema = _response_schema(fmt) if json_schema and kind == "json_schema" else None
        problems.extend(_json_problems(answer.text, object_only=kind == "json_object",
                                       schema=schema))
    if tool_calls:
        problems.extend(_tool_problems(answer.tool_calls, tools or {},
                                       request.get("tool_choice")))
    return problems


def _json_problems(text: str, *, object_only: bool, schema: Any) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("```"):
        return ["the JSON is fenced in ``` (JSON mode must answer bare JSON)"]
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        return [f"not valid JSON: {_short(str(exc))}"]
    if object_only and not isinstance(value, dict):
        return [f"JSON mode needs an object, got {type(value).__name__}"]
    error = schema_error(schema, value) if schema is not None else None
    return [f"does not match the response schema: {error}"] if error else []


def _tool_problems(calls: tuple[ToolCall, ...], tools: Mapping[str, Any],
                   choice: Any) -> list[str]:
    forced = choice == "required" or (isinstance(choice, Mapping)
                                      and choice.get("type") == "function")
    if not calls:
        return ["tool_choice asked for a tool call and there is none"] if forced else []
    problems = []
    for call in calls:
        if tools and call.name not in tools:
            problems.append(f"unknown tool {call.name!r}")
            continue
        try:
            args = orjson.loads(call.arguments or "{}")
        except orjson.JSONDecodeError:
            problems.append(f"{call.name}: arguments are not JSON: {_short(call.arguments)!r}")
            continue
        if not isinstance(args, dict):
            problems.append(f"{call.name}: arguments are not a JSON object")
            continue
        error = schema_error(tools.get(call.name), args)
        if error:
            problems.append(f"{call.name}: {error}")
    return problems


def _tool_schemas(tools: Any) -> dict[str, Any] | None:
    """Tool name -> parameters schema (None when a tool declares none)."""
    if not isinstance(tools, list) or not tools:
        return None
    out: dict[str, Any] = {}
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            out[fn["name"]] = fn.get("parameters")
    return out


def _response_schema(fmt: Any) -> Any:
    spec = fmt.get("json_schema") if isinstance(fmt, Mapping) else None
    return spec.get("schema") if isinstance(spec, Mapping) else None


def schema_error(schema: Any, value: Any) -> str | None:
    """Why ``value`` does not satisfy ``schema``, or None (also when the schema is not a
    usable schema: the request's own fault, which the provider reports, not the answer's)."""
    if not isinstance(schema, Mapping) or not schema:
        return None
    try:
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
        error = best_match(validator.iter_errors(value)) if validator else None
    except (Unresolvable, orjson.JSONEncodeError):
        return None
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return _short(f"{where}: {error.message}" if where else error.message)


@lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Validator | None:
    schema = orjson.loads(schema_json)
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError:
        return None
    return cls(schema)


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else text[:_DETAIL_CHARS - 3] + "..."
