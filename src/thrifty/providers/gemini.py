"""Google Gemini ``generateContent`` / ``streamGenerateContent`` behind the OpenAI chat shape:
maps an OpenAI request to a GenerateContentRequest, responses and SSE chunks back to OpenAI
objects, and Google RPC errors onto the error tree. Pure mapping; no HTTP, retries, keys or
prices here.

Choices the OpenAI shape forces: tool-call ids are made up (Gemini has none), tool results
find their function name through the earlier call's id, JSON schemas are cut down to the
OpenAPI subset Gemini's ``Schema`` accepts, and ``user``/``logit_bias``/``logprobs`` and
``parallel_tool_calls`` have no equivalent and are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from thrifty.core.clock import Clock, SystemClock
from thrifty.core.request import ChatRequest
from thrifty.core.response import Completion
from thrifty.core.usage import Usage
from thrifty.errors import (
    InvalidRequest,
    RateLimited,
    ThriftyError,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from thrifty.providers.base import Target, UpstreamRequest, auth_headers
from thrifty.providers.gemini_schema import gemini_schema
from thrifty.providers.openai_shapes import (
    MEDIA_PARTS,
    ChunkBuilder,
    as_dict,
    as_int,
    as_list,
    assistant_calls,
    completion_body,
    completion_id,
    content_parts,
    fold_messages,
    forced_function,
    function_tools,
    json_object,
    malformed_upstream,
    media_of,
    reasoning_budget,
    single_choice,
    stop_list,
    text_of,
    tool_call,
)
from thrifty.providers.upstream_errors import classify, error_fields, retry_after_seconds, scrub

API_VERSION = "v1beta"
# Gemini 3 rejects replayed function calls without the thought signature it issued; OpenAI
# clients cannot carry it, and Google documents this value for histories built elsewhere.
REPLAY_SIGNATURE = "skip_thought_signature_validator"

_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                       "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "MODEL_ARMOR"})
# Keys of Gemini's OpenAPI-subset ``Schema``; anything else (additionalProperties, $schema,
# strict, oneOf, ...) is rejected by the Developer API, so it is dropped.
_MIME_BY_EXT = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
    "webp": "image/webp", "heic": "image/heic", "heif": "image/heif", "pdf": "application/pdf",
}
_CHOICE_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
_AUTH_STATUSES = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED"})


# ---- request --------------------------------------------------------------------------------


def _mime_of(url: str) -> str:
    ext = url.split("?", 1)[0].rsplit(".", 1)[-1].lower()
    return _MIME_BY_EXT.get(ext, "image/jpeg")


def _user_parts(content: Any, param: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content_parts(content, param)):
        kind = part.get("type")
        if kind == "text":
            text = text_of([part], f"{param}[{j}]")
            if text:
                parts.append({"text": text})
        elif kind in MEDIA_PARTS:
            media = media_of(part, f"{param}[{j}]")
            if media.url is not None:
                parts.append({"fileData": {"fileUri": media.url, "mimeType": _mime_of(media.url)}})
            else:
                parts.append({"inlineData": {"mimeType": media.mime, "data": media.data}})
        else:
            raise InvalidRequest(f"content part type {kind!r} is not supported by Gemini",
                                 param=f"{param}[{j}].type")
    return parts


def convert_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages -> (``systemInstruction`` parts, ``contents``). A tool message names
    only its call id, so the function name comes from the assistant turn that made the call."""
    names: dict[str, str] = {}  # tool_call_id -> function name, from assistant turns so far

    def model_parts(msg: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
        text = text_of(msg.get("content"), f"messages[{i}].content")
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        for j, (call_id, name, args) in enumerate(assistant_calls(msg, i)):
            names[call_id] = name
            part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
            if j == 0:  # only the first of parallel calls carries a signature
                part["thoughtSignature"] = REPLAY_SIGNATURE
            parts.append(part)
        return parts

    def function_response(msg: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
        call_id = msg.get("tool_call_id")
        if not isinstance(call_id, str) or call_id not in names:
            raise InvalidRequest("tool message does not answer an earlier assistant tool call",
                                 param=f"messages[{i}].tool_call_id")
        text = text_of(msg.get("content"), f"messages[{i}].content")
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        response = value if isinstance(value, dict) else {"content": text}
        return [{"functionResponse": {"name": names[call_id], "response": response}}]

    system, contents = fold_messages(
        messages, "Gemini",
        user=lambda msg, i: _user_parts(msg.get("content"), f"messages[{i}].content"),
        assistant=model_parts, tool=function_response, model_role="model", key="parts",
    )
    return [{"text": part["text"]} for part in system], contents


def _tools(tools: Any) -> list[dict[str, Any]]:
    declarations: list[dict[str, Any]] = []
    for _, fn in function_tools(tools, "Gemini"):
        decl: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        params = gemini_schema(fn.get("parameters"))
        if params.get("properties"):  # a parameterless function must omit the schema
            decl["parameters"] = params
        declarations.append(decl)
    return [{"functionDeclarations": declarations}]


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _CHOICE_MODES:
        config: dict[str, Any] = {"mode": _CHOICE_MODES[choice]}
    elif forced_function(choice):
        config = {"mode": "ANY", "allowedFunctionNames": [forced_function(choice)]}
    else:
        raise InvalidRequest("unsupported tool_choice", param="tool_choice")
    return {"functionCallingConfig": config}


_SAMPLING = (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
             ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"))


def _generation_config(req: ChatRequest, body: Mapping[str, Any], target: Target) -> (
    dict[str, Any]
):
    config: dict[str, Any] = {dst: body[src] for src, dst in _SAMPLING
                              if body.get(src) is not None}
    if req.max_output_tokens:  # Gemini's limit, like OpenAI's, includes thinking tokens
        config["maxOutputTokens"] = req.max_output_tokens
    stops = stop_list(body.get("stop"))
    if stops:
        config["stopSequences"] = stops
    rf = as_dict(body.get("response_format"))
    if rf.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = as_dict(rf.get("json_schema")).get("schema")
        if rf["type"] == "json_schema" and isinstance(schema, dict):
            config["responseSchema"] = gemini_schema(schema)
    budget = reasoning_budget(body)  # validates the value even when it cannot be used
    if body.get("reasoning_effort") is not None and "reasoning" in target.info.capabilities:
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": False}
    return config


def build_body(req: ChatRequest, target: Target) -> dict[str, Any]:
    body = {k: v for k, v in req.body.items() if k not in target.drop_params}
    single_choice(body, target.provider)
    system, contents = convert_messages(body.get("messages"))
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    if body.get("tools"):
        out["tools"] = _tools(body["tools"])
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config:
            out["toolConfig"] = tool_config
    config = _generation_config(req, body, target)
    if config:
        out["generationConfig"] = config
    return out


def request_url(target: Target, *, stream: bool) -> str:
    # Tuned models live outside "models/"; a name with a slash is already a full resource.
    model = target.upstream_model
    resource = model if "/" in model else f"models/{model}"
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{target.base_url.rstrip('/')}/{target.api_version or API_VERSION}/{resource}:{method}"


# ---- response -------------------------------------------------------------------------------


def usage_from_gemini(meta: Mapping[str, Any]) -> Usage:
    """``promptTokenCount`` already includes cached tokens; tool-use prompt tokens and
    thoughts are reported outside prompt and candidates, so they are added here."""
    thoughts = as_int(meta.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=as_int(meta.get("promptTokenCount"))
        + as_int(meta.get("toolUsePromptTokenCount")),
        output_tokens=as_int(meta.get("candidatesTokenCount")) + thoughts,
        cached_input_tokens=as_int(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def finish_reason(raw: Any, has_calls: bool) -> str:
    if isinstance(raw, str) and raw in _FILTERED:
        return "content_filter"
    if raw == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_calls else "stop"


def read_parts(candidate: Mapping[str, Any]) -> tuple[str, str, list[tuple[str, str, str]]]:
    """``(answer text, thought text, [(vendor call id, name, arguments JSON)])``."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[tuple[str, str, str]] = []
    for raw in as_list(as_dict(candidate.get("content")).get("parts")):
        part = as_dict(raw)
        text = part.get("text")
        if isinstance(text, str):
            (thoughts if part.get("thought") is True else texts).append(text)
        call = as_dict(part.get("functionCall"))
        call_id, name = call.get("id"), call.get("name")
        if isinstance(name, str):
            arguments = orjson.dumps(as_dict(call.get("args"))).decode()
            calls.append((call_id if isinstance(call_id, str) else "", name, arguments))
    return "".join(texts), "".join(thoughts), calls


def _call_id(vendor_id: str, prefix: str, n: int) -> str:
    # Unique across turns (ids are echoed back in tool messages) and under OpenAI's 40 chars.
    return vendor_id or f"call_{prefix[-20:]}_{n}"


def parse_generate(data: Mapping[str, Any], req: ChatRequest, target: Target,
                   created: int) -> Completion:
    candidates = as_list(data.get("candidates"))
    usage = usage_from_gemini(as_dict(data.get("usageMetadata")))
    response_id = data.get("responseId")
    prefix = response_id if isinstance(response_id, str) and response_id else req.request_id
    text, thoughts, calls = "", "", []
    if candidates:
        candidate = as_dict(candidates[0])
        text, thoughts, raw_calls = read_parts(candidate)
        calls = [tool_call(_call_id(vid, prefix, n), name, args)
                 for n, (vid, name, args) in enumerate(raw_calls)]
        finish = finish_reason(candidate.get("finishReason"), bool(calls))
    elif as_dict(data.get("promptFeedback")).get("blockReason"):
        finish = "content_filter"  # the prompt itself was blocked: no candidate at all
    else:
        raise UpstreamBadResponse(f"provider {target.provider} sent a response without "
                                  "candidates", provider=target.provider)
    body = completion_body(
        id=completion_id(response_id, req.request_id), created=created,
        model=target.upstream_model, content=text, tool_calls=calls, finish_reason=finish,
        usage=usage, reasoning=thoughts,
    )
    return Completion(body=body, usage=usage, finish_reason=finish)


class GeminiStreamDecoder:
    """Each SSE event is a whole GenerateContentResponse. Function calls arrive complete, so
    each becomes one tool-call delta. There is no terminal event: the chunk carrying a
    ``finishReason`` (or a prompt block) ends the stream, and carries the final usage."""

    __slots__ = ("_api_key", "_calls", "_chunks", "_prefix", "_started", "done",
                 "finish_reason", "provider", "usage")

    def __init__(self, chunks: ChunkBuilder, prefix: str, provider: str,
                 api_key: str | None) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.provider = provider
        self._api_key = api_key
        self._chunks = chunks
        self._prefix = prefix
        self._calls = 0
        self._started = False

    def feed(self, event: str | None, data: bytes) -> list[dict[str, Any]]:
        payload = json_object(data, self.provider)
        if "error" in payload:  # a failure after the 200, in Google's error shape
            code = as_dict(payload["error"]).get("code")
            status = code if isinstance(code, int) and 400 <= code < 600 else 500
            raise classify_gemini(status, {}, data, provider=self.provider,
                                  api_key=self._api_key)
        with malformed_upstream(self.provider):
            return self._response(payload)

    def _response(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(payload.get("usageMetadata"), dict):  # cumulative: the last one counts
            self.usage = usage_from_gemini(payload["usageMetadata"])
        if self.done:
            return []
        if not self._started:  # every chunk of one stream must carry the same id
            self._started = True
            response_id = payload.get("responseId")
            if isinstance(response_id, str) and response_id:
                self._chunks.id = completion_id(response_id, "")
                self._prefix = response_id
        candidates = as_list(payload.get("candidates"))
        if not candidates:
            if as_dict(payload.get("promptFeedback")).get("blockReason"):
                return self._finish("content_filter")
            return []
        candidate = as_dict(candidates[0])
        text, thoughts, calls = read_parts(candidate)
        out = [self._chunks.reasoning(thoughts)] if thoughts else []
        if text:
            out.append(self._chunks.text(text))
        for vendor_id, name, args in calls:
            call_id = _call_id(vendor_id, self._prefix, self._calls)
            out.append(self._chunks.tool_call_start(self._calls, call_id, name, args))
            self._calls += 1
        raw_finish = candidate.get("finishReason")
        if isinstance(raw_finish, str) and raw_finish:
            out.extend(self._finish(finish_reason(raw_finish, self._calls > 0)))
        return out

    def _finish(self, reason: str) -> list[dict[str, Any]]:
        self.finish_reason = reason
        self.done = True
        out = [self._chunks.finish(reason)]
        if self.usage is not None:
            out.append(self._chunks.usage(self.usage))
        return out


# ---- errors ---------------------------------------------------------------------------------


def _error_details(body: bytes) -> list[dict[str, Any]]:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if isinstance(data, list) and data:  # streamed errors come as a one-element array
        data = data[0]
    details = as_dict(as_dict(data).get("error")).get("details")
    return [d for d in as_list(details) if isinstance(d, dict)]


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """``google.rpc.RetryInfo.retryDelay`` (a JSON Duration such as "37s" or "1.5s")."""
    for detail in details:
        delay = detail.get("retryDelay")
        if str(detail.get("@type", "")).endswith("RetryInfo") and isinstance(delay, str):
            try:
                return max(0.0, float(delay.removesuffix("s")))
            except ValueError:
                return None
    return None


def classify_gemini(
    status: int, headers: Mapping[str, str], body: bytes, *, provider: str, api_key: str | None
) -> ThriftyError:
    """Google's RPC ``status`` and ``ErrorInfo.reason`` first, then the shared mapping. An
    over-long prompt is a plain INVALID_ARGUMENT, so it stays an InvalidRequest."""
    message, _, rpc_status = error_fields(body)
    message = scrub(message, api_key)
    details = _error_details(body)
    reasons = {d.get("reason") for d in details}
    if rpc_status in _AUTH_STATUSES or (status == 400 and "API_KEY_INVALID" in reasons):
        return UpstreamAuthFailed(
            f"provider {provider} rejected the gateway's credentials ({rpc_status or status})",
            provider=provider)
    if rpc_status == "RESOURCE_EXHAUSTED":
        retry_after = retry_after_seconds(headers)
        return RateLimited(
            f"provider {provider} is rate limiting: {message}", provider=provider,
            retry_after=retry_after if retry_after is not None else _retry_delay(details))
    if rpc_status == "UNAVAILABLE":
        return UpstreamUnavailable(f"provider {provider} is unavailable: {message}",
                                   provider=provider, retry_after=retry_after_seconds(headers))
    if rpc_status == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(f"provider {provider} timed out: {message}", provider=provider)
    return classify(status, headers, body, provider=provider, api_key=api_key)


class GeminiAdapter:
    wire = "gemini"

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool) -> UpstreamRequest:
        return UpstreamRequest(request_url(target, stream=stream), auth_headers(target),
                               orjson.dumps(build_body(req, target)))

    def parse_response(self, body: bytes, req: ChatRequest, target: Target) -> Completion:
        data = json_object(body, target.provider)
        with malformed_upstream(target.provider):
            return parse_generate(data, req, target, int(self._clock.now()))

    def stream_decoder(self, req: ChatRequest, target: Target) -> GeminiStreamDecoder:
        chunks = ChunkBuilder(completion_id(None, req.request_id), int(self._clock.now()),
                              target.upstream_model)
        return GeminiStreamDecoder(chunks, req.request_id, target.provider, target.api_key)

    def classify_error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> ThriftyError:
        return classify_gemini(status, headers, body, provider=target.provider,
                               api_key=target.api_key)
