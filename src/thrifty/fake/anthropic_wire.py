"""The Anthropic Messages wire of the fake provider: ``x-api-key`` and ``anthropic-version``
checks, request parsing (system, content blocks, tools, ``cache_control``, ``thinking``,
``output_config.format`` structured outputs),
``message`` bodies, the ``message_start`` ... ``message_stop`` event stream, and
``{"type": "error", ...}`` errors. Usage follows Anthropic: ``input_tokens`` excludes cache
reads and writes. Shapes only: timing, faults and caching belong to the server.

SDK use: ``AsyncAnthropic(base_url=fake.base_url)``.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from thrifty.core.usage import Usage
from thrifty.fake.brain import Prompt, Reply, ToolSpec
from thrifty.fake.exchange import Call, Frame, WireError, argument_fragments, sse
from thrifty.fake.usage import IMAGE_TOKENS, MESSAGE_TOKENS, Segment, text_tokens

MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6", "claude-3-5-haiku-latest")
_STOP = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens",
         "tool_calls": "tool_use"}
_PING = sse(b'{"type": "ping"}', "ping")
_STOP_EVENT = sse(b'{"type":"message_stop"}', "message_stop")


def _error(status: int, etype: str, message: str,
           headers: dict[str, str] | None = None) -> WireError:
    body = {"type": "error", "error": {"type": etype, "message": message},
            "request_id": f"req_{os.urandom(12).hex()}"}
    return WireError(status, orjson.dumps(body), headers)


def _block_text(block: dict[str, Any]) -> tuple[str, int]:
    """The text of one content block (as a model reads it) and its image count."""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", "")), 0
    if kind in ("image", "document"):
        return "", 1
    if kind == "tool_use":
        return f"{block.get('name', '')}{orjson.dumps(block.get('input', {})).decode()}", 0
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, str):
            return inner, 0
        blocks = inner if isinstance(inner, list) else []
        parts = [_block_text(b) for b in blocks if isinstance(b, dict)]
        return "\n".join(t for t, _ in parts), sum(n for _, n in parts)
    return "", 0  # earlier thinking blocks are not billed again


def _reasoning(thinking: Any, max_tokens: int, invalid: Any) -> tuple[str | None, int | None]:
    if not isinstance(thinking, dict):
        return None, None
    kind = thinking.get("type")
    if kind == "disabled":
        return "none", None
    if kind == "adaptive":
        return "medium", None
    budget = thinking.get("budget_tokens")
    if kind != "enabled" or not isinstance(budget, int):
        raise invalid("thinking: budget_tokens: Field required", "thinking")
    if budget < 1024:
        raise invalid("thinking.enabled.budget_tokens: Input should be greater than or equal "
                      "to 1024", "thinking")
    if budget >= max_tokens:
        raise invalid("`max_tokens` must be greater than `thinking.budget_tokens`.", "thinking")
    return "medium", budget


def _output_format(body: dict[str, Any]) -> tuple[str, Any]:
    """Structured outputs: ``output_config.format`` (or the beta's ``output_format``)."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return "json_schema", fmt.get("schema")
    return "text", None


class AnthropicWire:
    name = "anthropic"

    def add_routes(self, router: web.UrlDispatcher, chat: Any, models: Any) -> None:
        router.add_post("/v1/messages", chat)
        router.add_get("/v1/models", models)

    def headers(self) -> dict[str, str]:
        return {"request-id": f"req_{os.urandom(12).hex()}"}

    def authenticate(self, request: web.Request, api_key: str | None) -> WireError | None:
        if api_key is not None:
            auth = request.headers.get("authorization", "")
            given = request.headers.get("x-api-key") or (
                auth[7:] if auth.lower().startswith("bearer ") else None
            )
            if not given:
                return _error(401, "authentication_error", "x-api-key header is required")
            if given != api_key:
                return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        return None

    def invalid(self, message: str, param: str | None = None) -> WireError:
        return _error(400, "invalid_request_error", message)

    def parse(self, request: web.Request, body: Any) -> Call:
        if not isinstance(body, dict):
            raise self.invalid("The request body must be a JSON object.")
        for name in ("model", "messages", "max_tokens"):
            if name not in body:
                raise self.invalid(f"{name}: Field required", name)
        model, messages, max_tokens = body["model"], body["messages"], body["max_tokens"]
        if not isinstance(model, str) or not model:
            raise self.invalid("model: Input should be a valid string", "model")
        if not isinstance(messages, list) or not messages:
            raise self.invalid("messages: at least one message is required", "messages")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise self.invalid("max_tokens: Input should be greater than or equal to 1")
        tools = self._tools(body.get("tools"))
        segments = [Segment(orjson.dumps(t), text_tokens(orjson.dumps(t)),
                            "cache_control" in t) for t in body.get("tools") or ()]
        turns: list[tuple[str, str]] = []
        self._system(body.get("system"), turns, segments)
        self._messages(messages, turns, segments)
        effort, budget = _reasoning(body.get("thinking"), max_tokens, self.invalid)
        stops = body.get("stop_sequences")
        output, schema = _output_format(body)
        prompt = Prompt(
            model=model,
            turns=tuple(turns),
            tools=tools,
            **self._tool_choice(body.get("tool_choice")),
            max_tokens=max_tokens,
            stop=tuple(s for s in stops if isinstance(s, str) and s) if isinstance(
                stops, list) else (),
            output=output,
            schema=schema,
            reasoning=effort,
            reasoning_budget=budget,
        )
        return Call(model=model, prompt=prompt, segments=segments,
                    stream=body.get("stream") is True, explicit_cache=True)

    def _tools(self, raw: Any) -> tuple[ToolSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.invalid("tools: Input should be a valid list", "tools")
        specs = []
        for i, tool in enumerate(raw):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise self.invalid(f"tools.{i}.name: Field required", "tools")
            if "type" not in tool or tool.get("type") == "custom":
                if not isinstance(tool.get("input_schema"), dict):
                    raise self.invalid(f"tools.{i}.custom.input_schema: Field required")
                specs.append(ToolSpec(tool["name"], tool["input_schema"]))
        return tuple(specs)

    def _tool_choice(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            return {}
        kind = raw.get("type")
        parallel = not raw.get("disable_parallel_tool_use", False)
        choice = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
        if kind == "tool" and isinstance(raw.get("name"), str):
            choice = raw["name"]
        return {"tool_choice": choice or "auto", "parallel_tools": parallel}

    def _system(self, system: Any, turns: list[tuple[str, str]], segments: list[Segment]) -> None:
        if isinstance(system, str):
            turns.append(("system", system))
            segments.append(Segment(system.encode(), text_tokens(system)))
        elif isinstance(system, list):
            texts = []
            for block in system:
                if isinstance(block, dict):
                    text = str(block.get("text", ""))
                    texts.append(text)
                    segments.append(Segment(orjson.dumps(block), text_tokens(text),
                                            "cache_control" in block))
            turns.append(("system", "\n".join(texts)))
        elif system is not None:
            raise self.invalid("system: Input should be a valid string or list", "system")

    def _messages(self, messages: list[Any], turns: list[tuple[str, str]],
                  segments: list[Segment]) -> None:
        for i, msg in enumerate(messages):
            role = msg.get("role") if isinstance(msg, dict) else None
            if role not in ("user", "assistant"):
                raise self.invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            content = msg.get("content")
            if isinstance(content, str):
                turns.append((role, content))
                segments.append(Segment(content.encode(), MESSAGE_TOKENS + text_tokens(content)))
                continue
            if not isinstance(content, list):
                raise self.invalid(f"messages.{i}.content: Input should be a valid list")
            overhead = MESSAGE_TOKENS
            texts: list[str] = []
            for block in content:
                if not isinstance(block, dict):
                    continue
                text, images = _block_text(block)
                if block.get("type") == "tool_result":
                    turns.append(("tool", text))
                else:
                    texts.append(text)
                tokens = overhead + text_tokens(text) + images * IMAGE_TOKENS
                segments.append(Segment(orjson.dumps(block), tokens, "cache_control" in block))
                overhead = 0
            if texts or role == "assistant":
                turns.append((role, "\n".join(texts)))

    def fault(self, kind: str) -> WireError:
        if kind == "429":
            reset = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers = {"retry-after": "1"}
            for resource, limit in (("requests", "50"), ("tokens", "80000"),
                                    ("input-tokens", "40000"), ("output-tokens", "8000")):
                headers[f"anthropic-ratelimit-{resource}-limit"] = limit
                headers[f"anthropic-ratelimit-{resource}-remaining"] = "0"
                headers[f"anthropic-ratelimit-{resource}-reset"] = reset
            return _error(429, "rate_limit_error", "This request would exceed the rate limit "
                          "for your organization of 50 requests per minute.", headers)
        if kind == "500":
            return _error(500, "api_error", "Internal server error")
        if kind == "529":
            return _error(529, "overloaded_error", "Overloaded")
        return _error(503, "api_error", "Service unavailable")

    def usage_body(self, usage: Usage) -> dict[str, Any]:
        fresh = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
        body: dict[str, Any] = {
            "input_tokens": fresh,
            "cache_creation_input_tokens": usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cached_input_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": usage.cache_write_tokens,
                               "ephemeral_1h_input_tokens": 0},
            "output_tokens": usage.output_tokens,
            "service_tier": "standard",
        }
        if usage.reasoning_tokens:
            body["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
        return body

    def _signature(self, reply: Reply) -> str:
        return base64.b64encode(bytes.fromhex(reply.key) * 4).decode()

    def _content(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.reasoning_tokens:
            blocks.append({"type": "thinking", "thinking": reply.thinking,
                           "signature": self._signature(reply)})
        if not reply.tool_calls:
            blocks.append({"type": "text", "text": reply.text})
        blocks.extend({"type": "tool_use", "id": f"toolu_01{c.id}", "name": c.name,
                       "input": c.arguments} for c in reply.tool_calls)
        return blocks

    def _message(self, call: Call, reply: Reply) -> dict[str, Any]:
        return {"id": f"msg_01{reply.key[:16]}{call.serial:08x}", "type": "message",
                "role": "assistant", "model": call.model}

    def render(self, call: Call, reply: Reply, usage: Usage) -> bytes:
        body = self._message(call, reply)
        body["content"] = self._content(reply)
        body["stop_reason"] = _STOP[reply.finish]
        body["stop_sequence"] = reply.stop_sequence
        body["usage"] = self.usage_body(usage)
        return orjson.dumps(body)

    def frames(self, call: Call, reply: Reply, usage: Usage) -> list[Frame]:
        full = self.usage_body(usage)
        start_usage = {**full, "output_tokens": 1}
        start = {**self._message(call, reply), "content": [], "stop_reason": None,
                 "stop_sequence": None, "usage": start_usage}
        out = [Frame(sse(orjson.dumps({"type": "message_start", "message": start}),
                         "message_start")), Frame(_PING)]
        for index, block in enumerate(self._content(reply)):
            out.extend(self._block_frames(index, block, reply))
        delta = {"type": "message_delta",
                 "delta": {"stop_reason": _STOP[reply.finish],
                           "stop_sequence": reply.stop_sequence},
                 "usage": {k: full[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                                "cache_read_input_tokens", "output_tokens")}}
        out.append(Frame(sse(orjson.dumps(delta), "message_delta")))
        out.append(Frame(_STOP_EVENT))
        return out

    def _block_frames(self, index: int, block: dict[str, Any], reply: Reply) -> list[Frame]:
        def event(name: str, payload: dict[str, Any], tokens: int = 0) -> Frame:
            return Frame(sse(orjson.dumps({"type": name, "index": index, **payload}), name), tokens)

        def delta(payload: dict[str, Any], tokens: int) -> Frame:
            return event("content_block_delta", {"delta": payload}, tokens)

        kind = block["type"]
        opening: dict[str, Any] = {"type": "text", "text": ""}
        if kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
        elif kind == "tool_use":  # the input arrives as JSON fragments
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        out = [event("content_block_start", {"content_block": opening})]
        if kind == "thinking":
            words = block["thinking"].split(" ")
            for i in range(0, len(words), 16):
                piece = " ".join(words[i : i + 16]) + (" " if i + 16 < len(words) else "")
                out.append(delta({"type": "thinking_delta", "thinking": piece}, 16))
            out.append(delta({"type": "signature_delta", "signature": block["signature"]}, 0))
        elif kind == "text":
            # Pre-encode the fixed part of the hot text_delta event once per block.
            head = (b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                    b"\"index\":" + str(index).encode() + b",\"delta\":{\"type\":\"text_delta\","
                    b"\"text\":")
            out.extend(Frame(head + orjson.dumps(t) + b"}}\n\n", n) for t, n in reply.chunks())
        else:
            for frag in argument_fragments(orjson.dumps(block["input"])):
                out.append(delta({"type": "input_json_delta", "partial_json": frag},
                                 text_tokens(frag)))
        out.append(event("content_block_stop", {}))
        return out

    def stream_type(self, call: Call) -> str:
        return "text/event-stream"

    def broken_frame(self, call: Call) -> bytes:
        return (b'event: content_block_delta\ndata: {"type": "content_block_delta", '
                b'"index": 0, "delta": {"type": "text_del\n\n')

    def models(self) -> bytes:
        data = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                 "created_at": "2025-05-14T00:00:00Z"} for m in MODELS]
        return orjson.dumps({"data": data, "has_more": False, "first_id": MODELS[0],
                             "last_id": MODELS[-1]})
