"""The Gemini ``generateContent`` wire of the fake provider: key checks (``x-goog-api-key``
or ``?key=``), request parsing (contents, parts, function declarations, generationConfig),
``GenerateContentResponse`` bodies, streams as ``alt=sse`` events or one streamed JSON array,
and ``{"error": {"code", "message", "status"}}`` errors. Usage follows Gemini: cached tokens
are inside ``promptTokenCount``, thoughts outside ``candidatesTokenCount``. Shapes only.

SDK use: ``genai.Client(api_key=..., http_options=HttpOptions(base_url=fake.base_url))``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from thrifty.core.usage import Usage
from thrifty.fake.brain import Prompt, Reply, ToolSpec
from thrifty.fake.exchange import Call, Frame, WireError
from thrifty.fake.usage import IMAGE_TOKENS, MESSAGE_TOKENS, Segment, text_tokens

MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-2.0-flash-lite")
_ACTIONS = ("generateContent", "streamGenerateContent")
_FINISH = {"stop": "STOP", "stop_sequence": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_ROLES = {"user": "user", "model": "assistant", "function": "tool", "tool": "tool"}


def _error(code: int, status: str, message: str, *, details: list[dict[str, Any]] | None = None,
           headers: dict[str, str] | None = None) -> WireError:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return WireError(code, orjson.dumps({"error": err}), headers)


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """Gemini accepts proto JSON field names in either spelling."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _part_text(part: dict[str, Any]) -> tuple[str, int, str | None]:
    """``(text, images, role override)`` of one part; function responses are tool turns."""
    if part.get("thought"):
        return "", 0, None
    if isinstance(part.get("text"), str):
        return part["text"], 0, None
    if _get(part, "inlineData", "inline_data") or _get(part, "fileData", "file_data"):
        return "", 1, None
    call = _get(part, "functionCall", "function_call")
    if isinstance(call, dict):
        return f"{call.get('name', '')}{orjson.dumps(call.get('args', {})).decode()}", 0, None
    result = _get(part, "functionResponse", "function_response")
    if isinstance(result, dict):
        return orjson.dumps(result.get("response", {})).decode(), 0, "tool"
    return "", 0, None


class GeminiWire:
    name = "gemini"

    def add_routes(self, router: web.UrlDispatcher, chat: Any, models: Any) -> None:
        for version in ("v1beta", "v1"):
            router.add_post(f"/{version}/models/{{target}}", chat)
            router.add_get(f"/{version}/models", models)

    def headers(self) -> dict[str, str]:
        return {}

    def authenticate(self, request: web.Request, api_key: str | None) -> WireError | None:
        if api_key is None:
            return None
        given = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not given:
            return _error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers "
                          "(callers without established identity). Please use API Key or other "
                          "form of API consumer identity to call this API.")
        if given != api_key:
            # The real API answers a wrong key with 400, naming the reason in the details.
            info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}}
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API "
                          "key.", details=[info])
        return None

    def invalid(self, message: str, param: str | None = None) -> WireError:
        return _error(400, "INVALID_ARGUMENT", message)

    def parse(self, request: web.Request, body: Any) -> Call:
        model, _, action = request.match_info["target"].partition(":")
        if action not in _ACTIONS:
            raise _error(404, "NOT_FOUND", f"The requested URL /{model}:{action} was not found.")
        if not isinstance(body, dict):
            raise self.invalid("Invalid JSON payload received. Expected an object.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise self.invalid("* GenerateContentRequest.contents: contents is not specified")
        turns: list[tuple[str, str]] = []
        segments: list[Segment] = []
        tools = self._tools(body.get("tools"), segments)
        self._system(_get(body, "systemInstruction", "system_instruction"), turns, segments)
        self._contents(contents, turns, segments)
        config = _get(body, "generationConfig", "generation_config")
        if not isinstance(config, dict):
            config = {}
        thinking = _get(config, "thinkingConfig", "thinking_config")
        prompt = Prompt(model=model, turns=tuple(turns), tools=tools,
                        tool_choice=self._tool_choice(_get(body, "toolConfig", "tool_config")),
                        **self._generation(config))
        return Call(model=model, prompt=prompt, segments=segments,
                    stream=action == "streamGenerateContent",
                    sse=request.query.get("alt") == "sse",
                    show_thinking=isinstance(thinking, dict) and bool(
                        _get(thinking, "includeThoughts", "include_thoughts")))

    def _tools(self, raw: Any, segments: list[Segment]) -> tuple[ToolSpec, ...]:
        if not isinstance(raw, list):
            return ()
        specs = []
        for tool in raw:
            decls = _get(tool, "functionDeclarations", "function_declarations") if isinstance(
                tool, dict) else None
            for decl in decls if isinstance(decls, list) else ():
                if not isinstance(decl, dict) or not isinstance(decl.get("name"), str):
                    raise self.invalid("* GenerateContentRequest.tools[0].function_declarations"
                                       "[0].name: Name is required.")
                schema = decl.get("parameters") or _get(
                    decl, "parametersJsonSchema", "parameters_json_schema") or {}
                specs.append(ToolSpec(decl["name"], schema))
        encoded = orjson.dumps(raw)
        segments.append(Segment(encoded, text_tokens(encoded)))
        return tuple(specs)

    def _tool_choice(self, config: Any) -> str:
        calling = _get(config, "functionCallingConfig", "function_calling_config") if isinstance(
            config, dict) else None
        if not isinstance(calling, dict):
            return "auto"
        mode = str(calling.get("mode", "AUTO")).upper()
        allowed = _get(calling, "allowedFunctionNames", "allowed_function_names")
        if mode == "NONE":
            return "none"
        if mode in ("ANY", "VALIDATED") and isinstance(allowed, list) and len(allowed) == 1:
            return str(allowed[0])
        return "required" if mode == "ANY" else "auto"

    def _generation(self, config: dict[str, Any]) -> dict[str, Any]:
        limit = _get(config, "maxOutputTokens", "max_output_tokens")
        stops = _get(config, "stopSequences", "stop_sequences")
        mime = _get(config, "responseMimeType", "response_mime_type")
        schema = _get(config, "responseJsonSchema", "response_json_schema") or _get(
            config, "responseSchema", "response_schema")
        output = "text"
        if mime == "application/json":
            output = "json_schema" if schema else "json_object"
        thinking = _get(config, "thinkingConfig", "thinking_config")
        effort, budget = None, None
        if isinstance(thinking, dict):
            raw_budget = _get(thinking, "thinkingBudget", "thinking_budget")
            level = _get(thinking, "thinkingLevel", "thinking_level")
            if raw_budget == 0:
                effort = "none"
            else:
                effort = str(level).lower() if isinstance(level, str) else "medium"
                budget = raw_budget if isinstance(raw_budget, int) and raw_budget > 0 else None
        return {
            "max_tokens": limit if isinstance(limit, int) else None,
            "stop": tuple(s for s in stops if isinstance(s, str) and s) if isinstance(
                stops, list) else (),
            "output": output,
            "schema": schema,
            "reasoning": effort,
            "reasoning_budget": budget,
        }

    def _system(self, system: Any, turns: list[tuple[str, str]], segments: list[Segment]) -> None:
        if isinstance(system, str):
            system = {"parts": [{"text": system}]}
        if not isinstance(system, dict):
            return
        parts = system.get("parts")
        text = "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)) if (
            isinstance(parts, list)) else ""
        turns.append(("system", text))
        segments.append(Segment(orjson.dumps(system), text_tokens(text)))

    def _contents(self, contents: list[Any], turns: list[tuple[str, str]],
                  segments: list[Segment]) -> None:
        for i, content in enumerate(contents):
            if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
                raise self.invalid(f"* GenerateContentRequest.contents[{i}].parts: contents.parts "
                                   "must not be empty.")
            role = _ROLES.get(str(content.get("role", "user")), "user")
            overhead = MESSAGE_TOKENS
            texts: list[str] = []
            for part in content["parts"]:
                if not isinstance(part, dict):
                    continue
                text, images, override = _part_text(part)
                if override == "tool":
                    turns.append(("tool", text))
                elif text:
                    texts.append(text)
                tokens = overhead + text_tokens(text) + images * IMAGE_TOKENS
                segments.append(Segment(orjson.dumps(part), tokens))
                overhead = 0
            if texts or role == "assistant":
                turns.append((role, "\n".join(texts)))

    def fault(self, kind: str) -> WireError:
        if kind == "429":
            retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
            return _error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check "
                          "quota).", details=[retry], headers={"retry-after": "1"})
        if kind == "500":
            return _error(500, "INTERNAL", "An internal error has occurred. Please retry or "
                          "report in https://developers.generativeai.google/guide/troubleshooting")
        return _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")

    def usage_body(self, usage: Usage) -> dict[str, Any]:
        # Gemini omits zero-valued counters, and counts thoughts outside candidates.
        body: dict[str, Any] = {
            "promptTokenCount": usage.input_tokens,
            "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
            "totalTokenCount": usage.total_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.input_tokens}],
        }
        if usage.cached_input_tokens:
            body["cachedContentTokenCount"] = usage.cached_input_tokens
            body["cacheTokensDetails"] = [{"modality": "TEXT",
                                           "tokenCount": usage.cached_input_tokens}]
        if usage.reasoning_tokens:
            body["thoughtsTokenCount"] = usage.reasoning_tokens
        return body

    def _parts(self, call: Call, reply: Reply) -> list[list[dict[str, Any]]]:
        """The reply's parts grouped as stream chunks carry them."""
        groups: list[list[dict[str, Any]]] = []
        if call.show_thinking and reply.reasoning_tokens:
            groups.append([{"text": reply.thinking, "thought": True}])
        groups.extend([{"text": text}] for text, _ in reply.chunks(8))
        if reply.tool_calls:
            groups.append([{"functionCall": {"name": c.name, "args": c.arguments}}
                           for c in reply.tool_calls])
        return groups or [[{"text": ""}]]

    def _response(self, call: Call, reply: Reply, parts: list[dict[str, Any]],
                  usage: dict[str, Any], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": call.model,
                "responseId": f"{reply.key[:14]}{call.serial:08x}"}

    def render(self, call: Call, reply: Reply, usage: Usage) -> bytes:
        parts = [p for group in self._parts(call, reply) for p in group]
        if not reply.tool_calls:  # the whole text in one part, as a unary response has it
            parts = [p for p in parts if p.get("thought")] + [{"text": reply.text}]
        return orjson.dumps(self._response(call, reply, parts, self.usage_body(usage),
                                           _FINISH[reply.finish]))

    def frames(self, call: Call, reply: Reply, usage: Usage) -> list[Frame]:
        groups = self._parts(call, reply)
        partial = {"promptTokenCount": usage.input_tokens, "totalTokenCount": usage.input_tokens,
                   "promptTokensDetails": [{"modality": "TEXT",
                                            "tokenCount": usage.input_tokens}]}
        bodies = []
        for i, parts in enumerate(groups):
            last = i == len(groups) - 1
            body = self._response(call, reply, parts,
                                  self.usage_body(usage) if last else partial,
                                  _FINISH[reply.finish] if last else None)
            bodies.append(orjson.dumps(body))
        tokens = [text_tokens(str(g[0].get("text", ""))) for g in groups]
        if call.sse:
            return [Frame(b"data: " + b + b"\r\n\r\n", n) for b, n in zip(bodies, tokens,
                                                                       strict=True)]
        # Without alt=sse the stream is one JSON array, written element by element.
        frames = [Frame((b"[" if i == 0 else b"\r\n,\r\n") + b, n)
                  for i, (b, n) in enumerate(zip(bodies, tokens, strict=True))]
        return [*frames, Frame(b"]")]

    def stream_type(self, call: Call) -> str:
        return "text/event-stream" if call.sse else "application/json"

    def broken_frame(self, call: Call) -> bytes:
        if call.sse:
            return b'data: {"candidates": [{"content": {"parts": [{"te\r\n\r\n'
        return b'\r\n,\r\n{"candidates": [{"cont'

    def models(self) -> bytes:
        data = [{"name": f"models/{m}", "version": "001", "displayName": m,
                 "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536,
                 "supportedGenerationMethods": ["generateContent", "countTokens"]}
                for m in MODELS]
        return orjson.dumps({"models": data})
