"""Ingress for ``POST /v1/chat/completions``: bytes -> validated :class:`ChatRequest`.

Validation is a declarative table of field checks, hand-written rather than a pydantic
model because it runs on every request (about 10x cheaper) and names the exact ``param``
(``messages[2].content[0].image_url.url``) in its 400s. Unknown top-level fields pass
through untouched: vendors add parameters faster than gateways learn them, and each
provider drops what it cannot take.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from thrifty.core.request import ChatRequest, RequestOptions
from thrifty.errors import InvalidRequest

Check = Callable[[Any, str], None]
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})


def _fail(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_type")


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null"}.get(type(value), "number")


def _string(value: Any, param: str) -> None:
    if not isinstance(value, str):
        raise _fail(param, f"'{param}' must be a string, got {_type_name(value)}")


def _boolean(value: Any, param: str) -> None:
    if not isinstance(value, bool):
        raise _fail(param, f"'{param}' must be a boolean, got {_type_name(value)}")


def _object(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        raise _fail(param, f"'{param}' must be an object, got {_type_name(value)}")


def _number(lo: float, hi: float) -> Check:
    def check(value: Any, param: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(param, f"'{param}' must be a number, got {_type_name(value)}")
        if not lo <= value <= hi:
            raise InvalidRequest(f"'{param}' must be between {lo} and {hi}, got {value}",
                                 param=param, code="invalid_value")
    return check


def _integer(lo: int, hi: int = 2**31) -> Check:
    def check(value: Any, param: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(param, f"'{param}' must be an integer, got {_type_name(value)}")
        if not lo <= value <= hi:
            raise InvalidRequest(f"'{param}' must be between {lo} and {hi}, got {value}",
                                 param=param, code="invalid_value")
    return check


def _n(value: Any, param: str) -> None:
    _integer(1)(value, param)
    if value != 1:
        raise InvalidRequest("only n=1 is supported; send several requests for more choices",
                             param=param, code="unsupported_value")


def _stop(value: Any, param: str) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or len(value) > 16:
        raise _fail(param, f"'{param}' must be a string or an array of up to 16 strings")
    for i, item in enumerate(value):
        _string(item, f"{param}[{i}]")


def _stream_options(value: Any, param: str) -> None:
    _object(value, param)
    if "include_usage" in value:
        _boolean(value["include_usage"], f"{param}.include_usage")


def _content_part(part: Any, param: str) -> None:
    _object(part, param)
    ptype = part.get("type")
    if ptype not in _PART_TYPES:
        raise InvalidRequest(f"'{param}.type' must be one of {sorted(_PART_TYPES)}, "
                             f"got {ptype!r}", param=f"{param}.type", code="invalid_value")
    if ptype == "text":
        _string(part.get("text"), f"{param}.text")
    elif ptype == "image_url":
        image = part.get("image_url")
        _object(image, f"{param}.image_url")
        _string(image.get("url"), f"{param}.image_url.url")


def _content(value: Any, param: str, *, nullable: bool) -> None:
    if isinstance(value, str) or (value is None and nullable):
        return
    if not isinstance(value, list):
        raise _fail(param, f"'{param}' must be a string or an array of content parts, "
                           f"got {_type_name(value)}")
    for i, part in enumerate(value):
        _content_part(part, f"{param}[{i}]")


def _tool_calls(value: Any, param: str) -> None:
    if not isinstance(value, list):
        raise _fail(param, f"'{param}' must be an array, got {_type_name(value)}")
    for i, call in enumerate(value):
        p = f"{param}[{i}]"
        _object(call, p)
        _string(call.get("id"), f"{p}.id")
        fn = call.get("function")
        _object(fn, f"{p}.function")
        _string(fn.get("name"), f"{p}.function.name")
        _string(fn.get("arguments"), f"{p}.function.arguments")


def _message(msg: Any, param: str) -> None:
    _object(msg, param)
    role = msg.get("role")
    if role not in _ROLES:
        raise InvalidRequest(f"'{param}.role' must be one of {sorted(_ROLES)}, got {role!r}",
                             param=f"{param}.role", code="invalid_value")
    if role == "assistant":
        if not msg.get("tool_calls") and "content" not in msg and "function_call" not in msg:
            raise InvalidRequest(f"'{param}' needs content or tool_calls",
                                 param=f"{param}.content", code="missing_required")
        _content(msg.get("content"), f"{param}.content", nullable=True)
        if "tool_calls" in msg and msg["tool_calls"] is not None:
            _tool_calls(msg["tool_calls"], f"{param}.tool_calls")
        return
    if "content" not in msg:
        raise InvalidRequest(f"'{param}.content' is required", param=f"{param}.content",
                             code="missing_required")
    _content(msg["content"], f"{param}.content", nullable=False)
    if role == "tool":
        _string(msg.get("tool_call_id"), f"{param}.tool_call_id")


def _messages(value: Any, param: str) -> None:
    if not isinstance(value, list):
        raise _fail(param, f"'{param}' must be an array of messages, got {_type_name(value)}")
    if not value:
        raise InvalidRequest("'messages' must contain at least one message", param=param,
                             code="invalid_value")
    for i, msg in enumerate(value):
        _message(msg, f"{param}[{i}]")


def _tools(value: Any, param: str) -> None:
    if not isinstance(value, list):
        raise _fail(param, f"'{param}' must be an array, got {_type_name(value)}")
    for i, tool in enumerate(value):
        p = f"{param}[{i}]"
        _object(tool, p)
        if tool.get("type") != "function":
            raise InvalidRequest(f"'{p}.type' must be 'function'", param=f"{p}.type",
                                 code="invalid_value")
        fn = tool.get("function")
        _object(fn, f"{p}.function")
        _string(fn.get("name"), f"{p}.function.name")
        if "parameters" in fn:
            _object(fn["parameters"], f"{p}.function.parameters")


def _tool_choice(value: Any, param: str) -> None:
    if value in ("none", "auto", "required"):
        return
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        _string(value["function"].get("name"), f"{param}.function.name")
        return
    raise InvalidRequest(f"'{param}' must be 'none', 'auto', 'required' or "
                         "{'type': 'function', 'function': {'name': ...}}", param=param,
                         code="invalid_value")


def _response_format(value: Any, param: str) -> None:
    _object(value, param)
    rtype = value.get("type")
    if rtype not in ("text", "json_object", "json_schema"):
        raise InvalidRequest(f"'{param}.type' must be text, json_object or json_schema",
                             param=f"{param}.type", code="invalid_value")
    if rtype == "json_schema":
        schema = value.get("json_schema")
        _object(schema, f"{param}.json_schema")
        _string(schema.get("name"), f"{param}.json_schema.name")
        if "schema" in schema:
            _object(schema["schema"], f"{param}.json_schema.schema")


_FIELDS: Mapping[str, Check] = {
    "messages": _messages,
    "stream": _boolean,
    "stream_options": _stream_options,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "n": _n,
    "max_tokens": _integer(1),
    "max_completion_tokens": _integer(1),
    "stop": _stop,
    "seed": _integer(-(2**63), 2**63 - 1),
    "user": _string,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _boolean,
    "response_format": _response_format,
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "logprobs": _boolean,
    "top_logprobs": _integer(0, 20),
    "logit_bias": _object,
    "metadata": _object,
}


def parse_options(value: Any) -> RequestOptions:
    _object(value, "thrifty")
    opts = RequestOptions()
    meta = value.get("metadata")
    if meta is not None:
        _object(meta, "thrifty.metadata")
        for k, v in meta.items():
            _string(v, f"thrifty.metadata.{k}")
        opts.metadata = dict(meta)
    tags = value.get("tags")
    if tags is not None:
        _stop(tags, "thrifty.tags")
        opts.tags = (tags,) if isinstance(tags, str) else tuple(tags)
    timeout = value.get("timeout_s")
    if timeout is not None:
        _number(0.001, 3600)(timeout, "thrifty.timeout_s")
        opts.timeout_s = float(timeout)
    fallbacks = value.get("fallbacks")
    if fallbacks is not None:
        _stop(fallbacks, "thrifty.fallbacks")
        opts.fallbacks = (fallbacks,) if isinstance(fallbacks, str) else tuple(fallbacks)
    for name, check in _ROUTING_OPTIONS.items():
        raw = value.get(name)
        if raw is not None:
            check(raw, f"thrifty.{name}")
            setattr(opts, name, raw if name == "policy" else float(raw))
    return opts


_ROUTING_OPTIONS: Mapping[str, Check] = {
    "quality_floor": _number(0, 1),
    "max_cost_usd": _number(0, 1e6),
    "latency_budget_ms": _number(0, 3.6e6),
    "policy": _string,
}
# x-thrifty-* request headers that set the same options as the body's ``thrifty`` object.
OPTION_HEADERS = {f"x-thrifty-{name.replace('_', '-')}": name for name in
                  ("quality_floor", "max_cost_usd", "latency_budget_ms", "policy", "timeout_s")}


def apply_option_headers(req: ChatRequest, headers: Mapping[str, str]) -> None:
    """Header values fill options the body did not set (the body wins: it is explicit)."""
    chain = headers.get("x-thrifty-fallbacks")
    if chain and not req.options.fallbacks:
        req.options.fallbacks = tuple(m.strip() for m in chain.split(",") if m.strip())
    for header, name in OPTION_HEADERS.items():
        raw = headers.get(header)
        if raw is None or getattr(req.options, name) is not None:
            continue
        if name == "policy":
            req.options.policy = raw
            continue
        try:
            value = float(raw)
        except ValueError:
            raise InvalidRequest(f"header {header} must be a number, got {raw!r}",
                                 param=header, code="invalid_value") from None
        check = _ROUTING_OPTIONS.get(name) or _number(0.001, 3600)
        check(value, header)
        setattr(req.options, name, value)


def parse_chat_request(raw: bytes, request_id: str) -> ChatRequest:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc.msg} "
                             f"(at character {exc.pos})", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"The request body must be a JSON object, got {_type_name(body)}",
                             code="invalid_json")
    model = body.get("model")
    if model is None:
        raise InvalidRequest("'model' is required", param="model", code="missing_required")
    _string(model, "model")
    if "messages" not in body:
        raise InvalidRequest("'messages' is required", param="messages",
                             code="missing_required")
    for name, value in body.items():  # a body names a few of the checked fields
        check = _FIELDS.get(name)
        if check is not None and value is not None:
            check(value, name)
    ext = body.pop("thrifty", None)
    options = parse_options(ext) if ext is not None else RequestOptions()
    stream = body.get("stream") is True
    so = body.get("stream_options")
    return ChatRequest(
        body=body,
        model=model,
        stream=stream,
        include_usage=stream and isinstance(so, dict) and so.get("include_usage") is True,
        request_id=request_id,
        user=body.get("user"),
        options=options,
    )
