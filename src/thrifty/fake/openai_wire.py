"""The OpenAI chat-completions wire of the fake provider (also Azure OpenAI's deployment
paths): request parsing and validation, ``chat.completion`` bodies, ``chat.completion.chunk``
streams ending in ``data: [DONE]``, and OpenAI-shaped errors. Shapes only: timing, faults and
caching belong to the server.

SDK use: ``AsyncOpenAI(base_url=fake.base_url + "/v1")``; Azure clients use ``fake.base_url``
as the endpoint and send the key in ``api-key``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
from aiohttp import web

from thrifty.core.usage import Usage
from thrifty.fake.brain import Prompt, Reply, ToolSpec
from thrifty.fake.exchange import Call, Frame, WireError, argument_fragments, sse
from thrifty.fake.usage import IMAGE_TOKENS, MESSAGE_TOKENS, Segment, text_tokens

MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "o4-mini")
_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool_calls": "tool_calls"}
_DONE = b"data: [DONE]\n\n"
_FINGERPRINT = "fp_fake0001"
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
          "tool": "tool", "function": "tool"}


def _error(status: int, message: str, etype: str, *, param: str | None = None,
           code: str | None = None, headers: dict[str, str] | None = None) -> WireError:
    body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
    return WireError(status, orjson.dumps(body), headers)


def _content_text(content: Any) -> tuple[str, int]:
    """The text of a message's content and how many images it holds."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts: list[str] = []
    images = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") in ("text", "input_text"):
            texts.append(str(part.get("text", "")))
        elif part.get("type") in ("image_url", "input_image"):
            images += 1
    return "\n".join(texts), images


def _tool_choice(raw: Any) -> str:
    if raw is None:
        return "auto"
    if isinstance(raw, str):
        return raw if raw in ("auto", "none", "required") else "auto"
    if isinstance(raw, dict):
        fn = raw.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return str(fn["name"])
    return "auto"


def _output(body: dict[str, Any]) -> tuple[str, Any]:
    rf = body.get("response_format")
    if not isinstance(rf, dict):
        return "text", None
    kind = rf.get("type")
    if kind == "json_schema":
        spec = rf.get("json_schema")
        return "json_schema", spec.get("schema") if isinstance(spec, dict) else None
    return ("json_object", None) if kind == "json_object" else ("text", None)


class OpenAIWire:
    name = "openai"

    def add_routes(self, router: web.UrlDispatcher, chat: Any, models: Any) -> None:
        for prefix in ("/v1", ""):
            router.add_post(f"{prefix}/chat/completions", chat)
            router.add_get(f"{prefix}/models", models)
        router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
        router.add_get("/openai/models", models)

    def headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_{os.urandom(12).hex()}"}

    def authenticate(self, request: web.Request, api_key: str | None) -> WireError | None:
        if api_key is None:
            return None
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("api-key")
        if not given:
            return _error(401, "You didn't provide an API key. You need to provide your API key "
                          "in an Authorization header using Bearer auth (i.e. Authorization: "
                          "Bearer YOUR_KEY).", "invalid_request_error")
        if given != api_key:
            shown = f"{given[:3]}****{given[-4:]}" if len(given) > 8 else "****"
            return _error(401, f"Incorrect API key provided: {shown}. You can find your API key "
                          "at https://platform.openai.com/account/api-keys.",
                          "invalid_request_error", code="invalid_api_key")
        return None

    def invalid(self, message: str, param: str | None = None) -> WireError:
        return _error(400, message, "invalid_request_error", param=param)

    def parse(self, request: web.Request, body: Any) -> Call:
        if not isinstance(body, dict):
            raise self.invalid("The request body must be a JSON object.")
        deployment = request.match_info.get("deployment")
        if deployment is not None and "api-version" not in request.query:
            raise WireError(404, b'{"error":{"code":"404","message":"Resource not found"}}')
        model = body.get("model") or deployment
        if not isinstance(model, str) or not model:
            raise self.invalid("you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise _error(400, "Missing required parameter: 'messages'.", "invalid_request_error",
                         param="messages", code="missing_required_parameter")
        if not messages:
            raise self.invalid("[] is too short - 'messages'", "messages")
        tools = self._tools(body.get("tools"))
        turns, segments = self._turns(messages)
        if tools:
            tools_json = orjson.dumps(body["tools"])
            segments.insert(0, Segment(tools_json, text_tokens(tools_json)))
        return Call(
            model=model,
            prompt=self._prompt(model, body, turns, tools),
            segments=segments,
            stream=body.get("stream") is True,
            include_usage=isinstance(options := body.get("stream_options"), dict)
            and options.get("include_usage") is True,
        )

    def _tools(self, raw: Any) -> tuple[ToolSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.invalid("Invalid type for 'tools': expected an array.", "tools")
        specs = []
        for i, tool in enumerate(raw):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise _error(400, f"Missing required parameter: 'tools[{i}].function.name'.",
                             "invalid_request_error", param=f"tools[{i}].function.name",
                             code="missing_required_parameter")
            specs.append(ToolSpec(fn["name"], fn.get("parameters") or {}))
        return tuple(specs)

    def _turns(self, messages: list[Any]) -> tuple[list[tuple[str, str]], list[Segment]]:
        turns: list[tuple[str, str]] = []
        segments: list[Segment] = []
        for i, msg in enumerate(messages):
            role = _ROLES.get(str(msg.get("role"))) if isinstance(msg, dict) else None
            if role is None:
                where = f"messages[{i}].role"
                raise self.invalid(f"Invalid value for '{where}'.", where)
            text, images = _content_text(msg.get("content"))
            calls = msg.get("tool_calls")
            extra = orjson.dumps(calls) if calls else b""
            turns.append((role, text + extra.decode()))
            tokens = MESSAGE_TOKENS + text_tokens(text) + text_tokens(extra) + images * IMAGE_TOKENS
            segments.append(Segment(orjson.dumps(msg), tokens))
        return turns, segments

    def _prompt(self, model: str, body: dict[str, Any], turns: list[tuple[str, str]],
                tools: tuple[ToolSpec, ...]) -> Prompt:
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        stop = body.get("stop")
        stops = (stop,) if isinstance(stop, str) else tuple(
            s for s in (stop if isinstance(stop, list) else ()) if isinstance(s, str) and s)
        output, schema = _output(body)
        effort = body.get("reasoning_effort")
        return Prompt(
            model=model,
            turns=tuple(turns),
            tools=tools,
            tool_choice=_tool_choice(body.get("tool_choice")),
            parallel_tools=body.get("parallel_tool_calls") is not False,
            max_tokens=limit if isinstance(limit, int) else None,
            stop=stops,
            output=output,
            schema=schema,
            reasoning=effort if isinstance(effort, str) else None,
        )

    def fault(self, kind: str) -> WireError:
        if kind == "429":
            headers = {
                "retry-after": "1",
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-limit-tokens": "200000",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "1s",
            }
            return _error(429, "Rate limit reached for requests per min (RPM): Limit 500, Used "
                          "500, Requested 1. Please try again in 1s.", "requests",
                          code="rate_limit_exceeded", headers=headers)
        if kind == "500":
            return _error(500, "The server had an error while processing your request. Sorry "
                          "about that!", "server_error")
        return _error(503, "The server is overloaded or not ready yet.", "server_error")

    def usage_body(self, usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens,
                                      "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": usage.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _head(self, call: Call, reply: Reply, obj: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{reply.key[:20]}{call.serial:08x}",
            "object": obj,
            "created": int(time.time()),
            "model": call.model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

    def _tool_calls(self, reply: Reply) -> list[dict[str, Any]]:
        return [
            {"id": f"call_{c.id}", "type": "function",
             "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()}}
            for c in reply.tool_calls
        ]

    def render(self, call: Call, reply: Reply, usage: Usage) -> bytes:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if reply.tool_calls else reply.text,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls(reply)
        body = self._head(call, reply, "chat.completion")
        body["choices"] = [{"index": 0, "message": message, "logprobs": None,
                            "finish_reason": _FINISH[reply.finish]}]
        body["usage"] = self.usage_body(usage)
        return orjson.dumps(body)

    def frames(self, call: Call, reply: Reply, usage: Usage) -> list[Frame]:
        head = self._head(call, reply, "chat.completion.chunk")
        tail = {"usage": None} if call.include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return sse(orjson.dumps({**head, "choices": [choice], **tail}))

        # The content delta is the hot path: encode its fixed parts once per stream.
        before = b"data: " + orjson.dumps(head)[:-1] + b',"choices":[{"index":0,"delta":{"content":'
        after = b'},"logprobs":null,"finish_reason":null}]' + (
            b',"usage":null}\n\n' if call.include_usage else b"}\n\n"
        )
        text_start = "" if not reply.tool_calls else None
        out = [Frame(chunk({"role": "assistant", "content": text_start, "refusal": None}))]
        out += [Frame(before + orjson.dumps(t) + after, n) for t, n in reply.chunks()]
        for i, tc in enumerate(self._tool_calls(reply)):
            fn = tc["function"]
            opening = {"index": i, "id": tc["id"], "type": "function",
                       "function": {"name": fn["name"], "arguments": ""}}
            out.append(Frame(chunk({"tool_calls": [opening]})))
            for frag in argument_fragments(fn["arguments"].encode()):
                piece = {"index": i, "function": {"arguments": frag}}
                out.append(Frame(chunk({"tool_calls": [piece]}), text_tokens(frag)))
        out.append(Frame(chunk({}, _FINISH[reply.finish])))
        if call.include_usage:
            final = {**head, "choices": [], "usage": self.usage_body(usage)}
            out.append(Frame(sse(orjson.dumps(final))))
        out.append(Frame(_DONE))
        return out

    def stream_type(self, call: Call) -> str:
        return "text/event-stream"

    def broken_frame(self, call: Call) -> bytes:
        return b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "trun\n\n'

    def models(self) -> bytes:
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
                for m in MODELS]
        return orjson.dumps({"object": "list", "data": data})
