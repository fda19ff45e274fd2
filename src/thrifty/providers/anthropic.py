"""Anthropic Messages API (``POST /v1/messages``) behind the OpenAI chat shape: maps an OpenAI
request to a Messages request, a Message or its event stream back to OpenAI objects, and
Anthropic errors onto the error tree. Pure mapping; no HTTP, retries, keys or prices here.

Choices the OpenAI shape forces (each also noted where it is made):
- ``max_tokens`` is required: the client's value capped at the model's ``max_output``, else
  ``DEFAULT_MAX_TOKENS`` (plus the thinking budget) within the same cap.
- ``temperature`` is clamped to Anthropic's 0..1 (values are not rescaled); with ``top_p``
  too, only ``temperature`` is sent.
- ``response_format`` json_schema becomes ``output_config.format`` (structured outputs) on
  models with the ``json_schema`` capability; json_object and older models get a short
  system instruction instead.
- ``reasoning_effort`` becomes extended thinking, unless the catalog says the model cannot
  think, a specific tool is forced, or a tool loop is in progress (see ``_thinking_budget``).
- seed, presence/frequency penalties, logit_bias and logprobs have no equivalent: dropped.
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
    PayloadTooLarge,
    ThriftyError,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from thrifty.providers.base import Target, UpstreamRequest, auth_headers
from thrifty.providers.openai_shapes import (
    MEDIA_PARTS,
    ChunkBuilder,
    as_dict,
    as_int,
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

API_VERSION = "2023-06-01"
"""Pinned on purpose: 2026-10-21 rejects temperature/top_p at any value, among other changes;
moving to it is a deliberate change to this module (a target's api_version overrides it)."""
DEFAULT_MAX_TOKENS = 4096
"""When the client sets no limit. OpenAI means "as much as the model allows", but reserving a
model's whole output allowance (64k+) on every call inflates Anthropic's rate-limit accounting
and lets a runaway answer run for minutes; 4096 covers ordinary answers, and a longer one ends
with finish_reason "length" so the client can tell."""
MIN_THINKING_BUDGET = 1024  # Anthropic rejects smaller budgets

_FINISH = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Status implied by an error ``type`` in a stream ``error`` event (the HTTP status was 200).
_STATUS_OF_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}
_JSON_ONLY = "Respond with one valid JSON object and nothing else: no prose, no code fences."
_JSON_SCHEMA = "Respond with JSON only, no prose or code fences, matching this JSON schema: "


# ---- request --------------------------------------------------------------------------------


def _text_block(part: Mapping[str, Any], text: str) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if "cache_control" in part:  # an extension field clients put on OpenAI content parts
        block["cache_control"] = part["cache_control"]
    return block


def _media_block(part: Mapping[str, Any], param: str) -> dict[str, Any]:
    media = media_of(part, param)
    if media.url is not None:
        block: dict[str, Any] = {"type": "image", "source": {"type": "url", "url": media.url}}
    elif media.mime.startswith("image/") or media.mime == "application/pdf":
        source = {"type": "base64", "media_type": media.mime, "data": media.data}
        block = {"type": "image" if media.mime.startswith("image/") else "document",
                 "source": source}
    else:
        raise InvalidRequest(f"Anthropic does not accept {media.mime} content",
                             param=f"{param}.type")
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _user_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content_parts(content, param)):
        kind = part.get("type")
        if kind == "text":
            text = text_of([part], f"{param}[{j}]")
            if text:  # Anthropic rejects empty text blocks
                blocks.append(_text_block(part, text))
        elif kind in MEDIA_PARTS:
            blocks.append(_media_block(part, f"{param}[{j}]"))
        else:
            raise InvalidRequest(f"content part type {kind!r} is not supported by Anthropic",
                                 param=f"{param}[{j}].type")
    return blocks


def _assistant_blocks(msg: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
    text = text_of(msg.get("content"), f"messages[{i}].content")
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks.extend({"type": "tool_use", "id": call_id, "name": name, "input": arguments}
                  for call_id, name, arguments in assistant_calls(msg, i))
    return blocks


def _tool_result(msg: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest("tool message without tool_call_id",
                             param=f"messages[{i}].tool_call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    text = text_of(msg.get("content"), f"messages[{i}].content")
    if text:
        block["content"] = text
    return [block]


def convert_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages -> (Anthropic ``system`` blocks, alternating ``messages``); a run of
    tool messages becomes one user message of ``tool_result`` blocks."""
    system, turns = fold_messages(
        messages, "Anthropic",
        user=lambda msg, i: _user_blocks(msg.get("content"), f"messages[{i}].content"),
        assistant=_assistant_blocks, tool=_tool_result, model_role="assistant", key="content",
    )
    return [_text_block(part, part["text"]) for part in system], turns


def _tools(tools: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tool, fn in function_tools(tools, "Anthropic"):
        spec: dict[str, Any] = {
            "name": fn["name"],
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        if "cache_control" in tool:
            spec["cache_control"] = tool["cache_control"]
        out.append(spec)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        out: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif forced_function(choice):
        out = {"type": "tool", "name": forced_function(choice)}
    else:
        raise InvalidRequest("unsupported tool_choice", param="tool_choice")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    elif choice is None:
        return None  # Anthropic's default is auto
    return out


def _thinking_budget(
    body: Mapping[str, Any], target: Target, turns: list[dict[str, Any]],
    choice: dict[str, Any] | None,
) -> int:
    """The thinking budget asked for, or 0 where Anthropic would reject thinking."""
    budget = reasoning_budget(body)
    if not budget or "reasoning" not in target.info.capabilities:
        return 0
    if choice is not None and choice["type"] in ("any", "tool"):
        return 0  # thinking allows only auto/none tool_choice; honour the forced tool
    last_assistant = next((t for t in reversed(turns) if t["role"] == "assistant"), None)
    if last_assistant and any(b["type"] == "tool_use" for b in last_assistant["content"]):
        # Mid tool loop Anthropic wants the earlier thinking blocks (with signatures) sent
        # back; OpenAI clients cannot, so this step runs without thinking.
        return 0
    return budget


def _limits(req: ChatRequest, target: Target, budget: int) -> tuple[int, int]:
    """``(max_tokens, thinking budget)``. OpenAI's limit includes reasoning tokens, like
    Anthropic's, so a client limit is kept and the budget fits under it."""
    cap = target.info.max_output
    max_tokens = req.max_output_tokens or DEFAULT_MAX_TOKENS + budget
    if cap > 0:
        max_tokens = min(max_tokens, cap)
    # Leave room for the answer: the default allowance, or half the limit if that is less.
    budget = min(budget, max_tokens - min(DEFAULT_MAX_TOKENS, max_tokens // 2))
    return max_tokens, budget if budget >= MIN_THINKING_BUDGET else 0


def _json_instruction(response_format: Any) -> str | None:
    rf = as_dict(response_format)
    if rf.get("type") == "json_object":
        return _JSON_ONLY
    if rf.get("type") == "json_schema":
        schema = as_dict(rf.get("json_schema")).get("schema")
        return _JSON_SCHEMA + orjson.dumps(schema).decode() if schema else _JSON_ONLY
    return None


def _native_schema(response_format: Any, target: Target) -> dict[str, Any] | None:
    """Structured outputs (``output_config.format``) for models the catalog marks
    ``json_schema``; others, and plain json_object, get the system instruction."""
    rf = as_dict(response_format)
    if rf.get("type") != "json_schema" or "json_schema" not in target.info.capabilities:
        return None
    schema = as_dict(rf.get("json_schema")).get("schema")
    return schema if isinstance(schema, dict) and schema else None


def _sampling(body: Mapping[str, Any], out: dict[str, Any], thinking: bool) -> None:
    # Thinking does not combine with temperature or (most) top_p changes: leave both unset.
    # Claude 4.5 and later reject temperature and top_p together: temperature wins. Models
    # that reject sampling parameters altogether need drop_params in their provider config.
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not thinking:
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    elif isinstance(body.get("top_p"), int | float) and not thinking:
        out["top_p"] = body["top_p"]
    stops = stop_list(body.get("stop"))
    if stops:
        out["stop_sequences"] = stops
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}


def build_body(req: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
    body = {k: v for k, v in req.body.items() if k not in target.drop_params}
    single_choice(body, target.provider)
    system, turns = convert_messages(body.get("messages"))
    out: dict[str, Any] = {"model": target.upstream_model, "messages": turns}
    choice = None
    if body.get("tools"):
        out["tools"] = _tools(body["tools"])
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    max_tokens, budget = _limits(req, target, _thinking_budget(body, target, turns, choice))
    out["max_tokens"] = max_tokens
    if budget:
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    _sampling(body, out, thinking=bool(budget))
    native = _native_schema(body.get("response_format"), target)
    if native is not None:
        out["output_config"] = {"format": {"type": "json_schema", "schema": native}}
    else:
        instruction = _json_instruction(body.get("response_format"))
        if instruction:
            system.append({"type": "text", "text": instruction})
    if system:
        out["system"] = system
    if stream:
        out["stream"] = True
    return out


# ---- response -------------------------------------------------------------------------------


def usage_from_anthropic(raw: Mapping[str, Any]) -> Usage:
    """Anthropic's ``input_tokens`` excludes cache reads and writes; thrifty's includes them.
    ``output_tokens`` already includes thinking; its thinking share is reported only by
    newer API versions (``output_tokens_details.thinking_tokens``), else counted as 0."""
    written = as_int(raw.get("cache_creation_input_tokens"))
    read = as_int(raw.get("cache_read_input_tokens"))
    return Usage(
        input_tokens=as_int(raw.get("input_tokens")) + written + read,
        output_tokens=as_int(raw.get("output_tokens")),
        cached_input_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=as_int(as_dict(raw.get("output_tokens_details")).get("thinking_tokens")),
    )


def finish_reason(stop_reason: Any) -> str:
    return _FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def parse_message(data: Mapping[str, Any], req: ChatRequest, target: Target,
                  created: int) -> Completion:
    blocks = data.get("content")
    if not isinstance(blocks, list):
        raise UpstreamBadResponse(f"provider {target.provider} sent a message without content",
                                  provider=target.provider)
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for raw in blocks:
        block = as_dict(raw)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            thoughts.append(block["thinking"])
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(tool_call(str(block.get("id", "")), str(block.get("name", "")),
                                   arguments))
    usage = usage_from_anthropic(as_dict(data.get("usage")))
    finish = finish_reason(data.get("stop_reason"))
    body = completion_body(
        id=completion_id(data.get("id"), req.request_id), created=created,
        model=target.upstream_model, content="".join(texts), tool_calls=calls,
        finish_reason=finish, usage=usage, reasoning="".join(thoughts),
    )
    return Completion(body=body, usage=usage, finish_reason=finish)


class AnthropicStreamDecoder:
    """Messages stream events -> OpenAI chunks. Tool-use blocks become tool calls numbered
    0, 1, ... in order of appearance; thinking is exposed as ``delta.reasoning_content``."""

    __slots__ = ("_api_key", "_chunks", "_raw_usage", "_tool_of_block", "done",
                 "finish_reason", "provider", "usage")

    def __init__(self, chunks: ChunkBuilder, provider: str, api_key: str | None) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.provider = provider
        self._api_key = api_key
        self._chunks = chunks
        self._raw_usage: dict[str, Any] = {}
        self._tool_of_block: dict[int, int] = {}

    def feed(self, event: str | None, data: bytes) -> list[dict[str, Any]]:
        payload = json_object(data, self.provider)
        with malformed_upstream(self.provider):
            return self._dispatch(payload.get("type") or event, payload)

    def _dispatch(self, kind: Any, payload: dict[str, Any]) -> list[dict[str, Any]]:
        match kind:
            case "message_start":
                message = as_dict(payload.get("message"))
                if isinstance(message.get("id"), str) and message["id"]:
                    self._chunks.id = completion_id(message["id"], "")
                self._add_usage(message.get("usage"))
                return []
            case "content_block_start":
                block = as_dict(payload.get("content_block"))
                return self._block_start(payload.get("index"), block)
            case "content_block_delta":
                return self._block_delta(payload.get("index"), as_dict(payload.get("delta")))
            case "message_delta":
                self._add_usage(payload.get("usage"))
                stop = as_dict(payload.get("delta")).get("stop_reason")
                if stop is None:
                    return []
                self.finish_reason = finish_reason(stop)
                return [self._chunks.finish(self.finish_reason)]
            case "message_stop":
                return self._stop()
            case "error":
                raise stream_error(payload, self.provider, self._api_key)
        return []  # ping, content_block_stop and event types added later

    def _add_usage(self, usage: Any) -> None:
        # message_delta counts are cumulative: later values replace earlier ones.
        self._raw_usage.update({k: v for k, v in as_dict(usage).items() if v is not None})
        self.usage = usage_from_anthropic(self._raw_usage)

    def _block_start(self, index: Any, block: dict[str, Any]) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "tool_use":
            tool_index = len(self._tool_of_block)
            if isinstance(index, int):
                self._tool_of_block[index] = tool_index
            call_id, name = block.get("id"), block.get("name")
            return [self._chunks.tool_call_start(
                tool_index, call_id if isinstance(call_id, str) else "",
                name if isinstance(name, str) else "")]
        text = block.get("text") if kind == "text" else block.get("thinking")
        if not isinstance(text, str) or not text:
            return []
        return [self._chunks.text(text) if kind == "text" else self._chunks.reasoning(text)]

    def _block_delta(self, index: Any, delta: dict[str, Any]) -> list[dict[str, Any]]:
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str) and delta["text"]:
            return [self._chunks.text(delta["text"])]
        if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            return [self._chunks.reasoning(delta["thinking"])] if delta["thinking"] else []
        fragment = delta.get("partial_json")
        if kind == "input_json_delta" and isinstance(fragment, str) and fragment and (
                isinstance(index, int) and index in self._tool_of_block):
            return [self._chunks.tool_call_arguments(self._tool_of_block[index], fragment)]
        return []  # signature and citation deltas have no OpenAI counterpart

    def _stop(self) -> list[dict[str, Any]]:
        self.done = True
        out: list[dict[str, Any]] = []
        if self.finish_reason is None:  # no message_delta: still end the choice properly
            self.finish_reason = "stop"
            out.append(self._chunks.finish("stop"))
        if self.usage is not None:
            out.append(self._chunks.usage(self.usage))
        return out


# ---- errors ---------------------------------------------------------------------------------


def classify_anthropic(
    status: int, headers: Mapping[str, str], body: bytes, *, provider: str, api_key: str | None
) -> ThriftyError:
    """Anthropic's error ``type`` first (it is more precise than the status), then the
    shared status mapping."""
    message, _, etype = error_fields(body)
    message = scrub(message, api_key)
    retry_after = retry_after_seconds(headers)
    if etype == "overloaded_error" or status == 529:
        return UpstreamUnavailable(f"provider {provider} is overloaded: {message}",
                                   provider=provider, retry_after=retry_after)
    if etype == "request_too_large":
        return PayloadTooLarge(f"provider {provider}: {message}", provider=provider)
    if etype == "timeout_error":
        return UpstreamTimeout(f"provider {provider} timed out: {message}", provider=provider)
    if etype == "billing_error":
        return UpstreamAuthFailed(f"provider {provider} refused the gateway's account: {message}",
                                  provider=provider, code="upstream_billing_error")
    # "prompt is too long" is an invalid_request_error told apart only by its message text,
    # so it stays an InvalidRequest.
    return classify(status, headers, body, provider=provider, api_key=api_key)


def stream_error(payload: Mapping[str, Any], provider: str, api_key: str | None) -> ThriftyError:
    """An ``error`` event inside a 200 stream, classified as if it came with its status."""
    etype = as_dict(payload.get("error")).get("type")
    status = _STATUS_OF_TYPE.get(etype, 500) if isinstance(etype, str) else 500
    return classify_anthropic(status, {}, orjson.dumps(payload), provider=provider,
                              api_key=api_key)


class AnthropicAdapter:
    wire = "anthropic"

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool) -> UpstreamRequest:
        headers = auth_headers(target)
        headers.setdefault("anthropic-version", target.api_version or API_VERSION)
        return UpstreamRequest(
            f"{target.base_url.rstrip('/')}/v1/messages",
            headers,
            orjson.dumps(build_body(req, target, stream=stream)),
        )

    def parse_response(self, body: bytes, req: ChatRequest, target: Target) -> Completion:
        data = json_object(body, target.provider)
        with malformed_upstream(target.provider):
            return parse_message(data, req, target, int(self._clock.now()))

    def stream_decoder(self, req: ChatRequest, target: Target) -> AnthropicStreamDecoder:
        chunks = ChunkBuilder(completion_id(None, req.request_id), int(self._clock.now()),
                              target.upstream_model)
        return AnthropicStreamDecoder(chunks, target.provider, target.api_key)

    def classify_error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> ThriftyError:
        return classify_anthropic(status, headers, body, provider=target.provider,
                                  api_key=target.api_key)
