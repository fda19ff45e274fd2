"""OpenAI chat shapes shared by the adapters of non-OpenAI wires: reading what every one of
them translates from an OpenAI request (messages folded into alternating turns, text and
media parts, tool calls and definitions, reasoning effort) and building the OpenAI
``chat.completion`` / ``chat.completion.chunk`` objects they all return. Pure functions
over plain dicts; nothing vendor-specific lives here."""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from thrifty.core.usage import Usage
from thrifty.errors import InvalidRequest, UpstreamBadResponse

# reasoning_effort -> thinking budget in tokens. "none"/"minimal" mean no extended thinking.
# 1024 is Anthropic's smallest budget; the others leave room for the answer within the
# default output allowance while scaling roughly 4x per step.
REASONING_BUDGETS: Mapping[str, int] = {
    "none": 0, "minimal": 0, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 24576,
}


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (vendor fields may be missing)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int:
    """A non-negative token count, 0 for anything else (bools are not counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def reasoning_budget(body: Mapping[str, Any]) -> int:
    """Thinking budget for the request's ``reasoning_effort`` (0: do not ask for thinking)."""
    effort = body.get("reasoning_effort")
    if effort is None:
        return 0
    if not isinstance(effort, str) or effort not in REASONING_BUDGETS:
        raise InvalidRequest(
            f"reasoning_effort must be one of {', '.join(REASONING_BUDGETS)}",
            param="reasoning_effort",
        )
    return REASONING_BUDGETS[effort]


def stop_list(stop: Any) -> list[str]:
    """OpenAI ``stop`` (a string or a list of strings) as a list."""
    if isinstance(stop, str):
        return [stop]
    return [s for s in as_list(stop) if isinstance(s, str)]


def single_choice(body: Mapping[str, Any], provider: str) -> None:
    """Neither Anthropic nor thrifty's Gemini mapping returns several choices."""
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest(f"provider {provider} returns one choice per request; n must be 1",
                             param="n")


def content_parts(content: Any, param: str) -> list[dict[str, Any]]:
    """Message content as a list of parts: a plain string becomes one text part."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return content
    raise InvalidRequest("message content must be a string or a list of parts", param=param)


def text_of(content: Any, param: str) -> str:
    """The text of content that may only hold text (system, tool and refusal parts)."""
    texts: list[str] = []
    for j, part in enumerate(content_parts(content, param)):
        text = part.get("text", part.get("refusal"))
        if not isinstance(text, str):
            raise InvalidRequest("only text parts are allowed here", param=f"{param}[{j}]")
        texts.append(text)
    return "\n".join(texts)


@dataclass(frozen=True, slots=True)
class Media:
    """An image, audio or file content part: inline base64 ``data`` or a remote ``url``."""

    mime: str
    """Empty for a remote URL: the part does not say."""
    data: str | None = None
    url: str | None = None


MEDIA_PARTS = frozenset({"image_url", "input_audio", "file"})


def media_of(part: Mapping[str, Any], param: str) -> Media:
    """The media of an ``image_url``, ``input_audio`` or ``file`` (data URL) part."""
    kind = part.get("type")
    if kind == "image_url":
        value = part.get("image_url")
        url = value.get("url") if isinstance(value, dict) else value  # some clients send a str
        if not isinstance(url, str) or not url:
            raise InvalidRequest("image_url part without a url", param=f"{param}.image_url.url")
        parsed = parse_data_url(url, f"{param}.image_url.url")
        return Media(mime="", url=url) if parsed is None else Media(*parsed)
    if kind == "input_audio":
        audio = as_dict(part.get("input_audio"))
        if not isinstance(audio.get("data"), str) or not isinstance(audio.get("format"), str):
            raise InvalidRequest("input_audio needs data and format", param=f"{param}.input_audio")
        return Media(mime=f"audio/{audio['format']}", data=audio["data"])
    file_data = as_dict(part.get("file")).get("file_data")
    parsed = parse_data_url(file_data, f"{param}.file.file_data") if isinstance(
        file_data, str) else None
    if parsed is None:  # uploaded file ids belong to OpenAI's storage, not the vendor's
        raise InvalidRequest("file parts must carry file_data as a data URL",
                             param=f"{param}.file")
    return Media(*parsed)


def parse_data_url(url: str, param: str) -> tuple[str, str] | None:
    """``(mime type, base64 data)`` of a ``data:`` URL, None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    mime, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or not mime:
        raise InvalidRequest("data URLs must look like data:<mime>;base64,<data>", param=param)
    try:
        binascii.a2b_base64(data[:4096])  # cheap sanity check of the prefix, not the whole blob
    except binascii.Error as exc:
        raise InvalidRequest("data URL payload is not base64", param=param) from exc
    return mime, data


def tool_arguments(arguments: Any, param: str) -> dict[str, Any]:
    """An assistant tool call's ``function.arguments`` (a JSON string) as an object."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}  # some clients send "" for tools without parameters
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("tool call arguments are not valid JSON", param=param) from exc
    if not isinstance(value, dict):
        raise InvalidRequest("tool call arguments must be a JSON object", param=param)
    return value


def assistant_calls(msg: Mapping[str, Any], i: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``(id, name, arguments object)`` of each tool call of assistant message ``i``."""
    calls: list[tuple[str, str, dict[str, Any]]] = []
    for j, raw in enumerate(as_list(msg.get("tool_calls"))):
        call = as_dict(raw)
        fn = as_dict(call.get("function"))
        call_id, name = call.get("id"), fn.get("name")
        param = f"messages[{i}].tool_calls[{j}]"
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise InvalidRequest("tool call without id or function name", param=param)
        calls.append(
            (call_id, name, tool_arguments(fn.get("arguments"), f"{param}.function.arguments"))
        )
    return calls


def function_tools(tools: Any, vendor: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(tool, tool["function"])`` for each OpenAI tool, all of which must be functions."""
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for j, raw in enumerate(as_list(tools)):
        tool = as_dict(raw)
        fn = as_dict(tool.get("function"))
        if tool.get("type") != "function" or not isinstance(fn.get("name"), str):
            raise InvalidRequest(f"{vendor} supports only function tools with a name",
                                 param=f"tools[{j}]")
        out.append((tool, fn))
    return out


def forced_function(choice: Any) -> str | None:
    """The function name of a ``{"type": "function", "function": {"name": ...}}`` choice."""
    name = as_dict(as_dict(choice).get("function")).get("name")
    return name if isinstance(name, str) else None


MessageMapper = Callable[[Mapping[str, Any], int], list[dict[str, Any]]]


def fold_messages(
    messages: Any,
    vendor: str,
    *,
    user: MessageMapper,
    assistant: MessageMapper,
    tool: MessageMapper,
    model_role: str,
    key: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages -> (system text parts, vendor turns ``{"role", key: [...]}``).

    System and developer messages are lifted out wherever they appear (both vendors take
    the system prompt apart). Tool results count as user turns, and consecutive turns of
    one role merge: both vendors want user and model turns to alternate, and a run of
    parallel tool results then forms the single turn they expect."""
    mappers = {"user": user, "assistant": assistant, "tool": tool}
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, raw in enumerate(as_list(messages)):
        msg = as_dict(raw)
        role = msg.get("role")
        param = f"messages[{i}].content"
        if role in ("system", "developer"):
            for j, part in enumerate(content_parts(msg.get("content"), param)):
                text = text_of([part], f"{param}[{j}]")
                if text:
                    system.append({**part, "text": text})
            continue
        mapper = mappers.get(role) if isinstance(role, str) else None
        if mapper is None:
            raise InvalidRequest(f"message role {role!r} is not supported by {vendor}",
                                 param=f"messages[{i}].role")
        items = mapper(msg, i)
        turn_role = model_role if role == "assistant" else "user"
        if not items:
            continue  # vendors reject empty turns
        if turns and turns[-1]["role"] == turn_role:
            turns[-1][key].extend(items)
        else:
            turns.append({"role": turn_role, key: items})
    return system, turns


def json_object(body: bytes, provider: str) -> dict[str, Any]:
    """An upstream JSON body that must be an object."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamBadResponse(f"provider {provider} sent malformed JSON",
                                  provider=provider) from exc
    if not isinstance(data, dict):
        raise UpstreamBadResponse(f"provider {provider} sent a non-object JSON body",
                                  provider=provider)
    return data


@contextmanager
def malformed_upstream(provider: str) -> Iterator[None]:
    """Turns an upstream body or stream event of an unexpected shape into
    UpstreamBadResponse, so parsing never raises anything but a ThriftyError."""
    try:
        yield
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamBadResponse(f"provider {provider} sent a response of an unexpected shape",
                                  provider=provider) from exc


def completion_id(vendor_id: Any, fallback: str) -> str:
    return f"chatcmpl-{vendor_id if isinstance(vendor_id, str) and vendor_id else fallback}"


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def completion_body(
    *,
    id: str,
    created: int,
    model: str,
    content: str,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: Usage | None,
    reasoning: str = "",
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` with one choice."""
    message: dict[str, Any] = {
        "role": "assistant",
        # OpenAI sends null content when the answer is only tool calls.
        "content": content if content or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = reasoning  # DeepSeek's name, read by many clients
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
    }
    if usage is not None:
        body["usage"] = usage.to_openai()
    return body


class ChunkBuilder:
    """Builds the chunks of one OpenAI stream: one id, one ``created``, the role on the
    first chunk only (sent with the first content, so nothing is emitted before the
    upstream has produced something, and early upstream errors can still fail over)."""

    __slots__ = ("_role_sent", "created", "id", "model")

    def __init__(self, id: str, created: int, model: str) -> None:
        self.id = id
        self.created = created
        self.model = model
        self._role_sent = False

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return self._chunk(
            [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
        )

    def text(self, text: str) -> dict[str, Any]:
        return self.delta({"content": text})

    def reasoning(self, text: str) -> dict[str, Any]:
        return self.delta({"reasoning_content": text})

    def tool_call_start(self, index: int, call_id: str, name: str, arguments: str = "") -> (
        dict[str, Any]
    ):
        call = {"index": index, **tool_call(call_id, name, arguments)}
        return self.delta({"tool_calls": [call]})

    def tool_call_arguments(self, index: int, fragment: str) -> dict[str, Any]:
        return self.delta({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def finish(self, reason: str) -> dict[str, Any]:
        return self.delta({}, reason)

    def usage(self, usage: Usage) -> dict[str, Any]:
        """The final usage chunk (``choices: []``), always emitted; the gateway drops it when
        the client did not ask for ``stream_options.include_usage``."""
        chunk = self._chunk([])
        chunk["usage"] = usage.to_openai()
        return chunk
