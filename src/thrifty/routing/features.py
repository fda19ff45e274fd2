"""What routing knows about a request, read once from its body: sizes, needs (tools, images,
structured output), the last user turn and the caller's tags. Pure and cheap (about 2 us
for a 1 KB request); the language is detected only when a rule asks for it, and ranking
policies read only :func:`request_size` (a fifth of that). Must not call providers or mutate
the request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import orjson

from thrifty.core.estimate import estimate_prompt_tokens
from thrifty.core.request import ChatRequest
from thrifty.routing.language import LanguageDetector, default_detector

_CHARS_PER_TOKEN = 4
_SYSTEM_ROLES = frozenset({"system", "developer"})
_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
_NO_METADATA: Mapping[str, str] = MappingProxyType({})

RequestSize = tuple[int, int | None, frozenset[str]]
"""(estimated input tokens, max output tokens, capabilities needed): all that cost
estimates and exclusions read of a request."""


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    estimated_input_tokens: int
    """Prompt tokens, estimated: characters / 4, 3 a message, 85 an image, tool schemas / 4."""
    max_output_tokens: int | None
    has_tools: bool
    has_images: bool
    response_format: str | None
    """None, ``text``, ``json_object`` or ``json_schema``."""
    stream: bool
    message_count: int
    last_user_text: str
    """The text of the last user message (its text parts joined by newlines)."""
    system_text_chars: int
    metadata: Mapping[str, str]
    tags: tuple[str, ...]
    language: str | None = None
    """ISO 639-1 of ``last_user_text``; filled only when asked (a rule needs it)."""

    @property
    def last_user_chars(self) -> int:
        return len(self.last_user_text)

    def with_language(self, detector: LanguageDetector | None = None) -> RequestFeatures:
        """These features with ``language`` detected (for a rule set reached by delegation
        whose conditions read it, when the first one's did not)."""
        if self.language is not None or not self.last_user_text:
            return self
        language = (detector or default_detector()).detect(self.last_user_text)
        return replace(self, language=language) if language is not None else self

    def required_capabilities(self) -> frozenset[str]:
        """What a model must support to serve the request (names from pricing.price)."""
        return _NEEDS[self.has_tools, self.has_images, self.response_format == "json_schema"]

    def size(self) -> RequestSize:
        return (self.estimated_input_tokens, self.max_output_tokens,
                self.required_capabilities())


_NEEDS = {(tools, images, schema): frozenset(
    name for name, on in (("tools", tools), ("vision", images), ("json_schema", schema)) if on)
    for tools in (False, True) for images in (False, True) for schema in (False, True)}
"""(has tools, has images, wants a json_schema) -> the capabilities that needs, built once."""


def request_size(req: ChatRequest) -> RequestSize:
    """``extract_features(req).size()`` without reading the rest of the request."""
    body = req.body
    messages = body.get("messages")
    has_images = False
    if isinstance(messages, list):  # a loop: a generator costs more on short chats
        for msg in messages:
            if isinstance(msg, dict) and _has_image(msg.get("content")):
                has_images = True
                break
    tools = body.get("tools") or body.get("functions")
    rf = body.get("response_format")
    schema = isinstance(rf, dict) and rf.get("type") == "json_schema"
    return (_input_tokens(body, tools), req.max_output_tokens,
            _NEEDS[bool(tools), has_images, schema])


def extract_features(
    req: ChatRequest,
    *,
    detect_language: bool = False,
    detector: LanguageDetector | None = None,
) -> RequestFeatures:
    """The routing features of ``req``. ``detect_language`` runs ``detector`` (default: the
    best installed one) over the last user message."""
    body = req.body
    messages = body.get("messages")
    if not isinstance(messages, list):
        messages = []
    has_images, system_chars, last_user = _scan(messages)
    tools = body.get("tools") or body.get("functions")
    tokens = _input_tokens(body, tools)
    meta = req.options.metadata
    language = None
    if detect_language and last_user:
        language = (detector or default_detector()).detect(last_user)
    return RequestFeatures(
        estimated_input_tokens=tokens,
        max_output_tokens=req.max_output_tokens,
        has_tools=bool(tools),
        has_images=has_images,
        response_format=_response_format(body.get("response_format")),
        stream=req.stream,
        message_count=len(messages),
        last_user_text=last_user,
        system_text_chars=system_chars,
        metadata=MappingProxyType(meta) if meta else _NO_METADATA,
        tags=req.options.tags,
        language=language,
    )


def _input_tokens(body: dict[str, Any], tools: Any) -> int:
    tokens = estimate_prompt_tokens(body)
    if tools:
        tokens += len(orjson.dumps(tools)) // _CHARS_PER_TOKEN
    return tokens


def _has_image(content: Any) -> bool:
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "image_url":
                return True
    return False


def _scan(messages: list[Any]) -> tuple[bool, int, str]:
    """(any image part, characters of system text, the last user message's text)."""
    has_images = False
    system_chars = 0
    last_user: Any = None
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        content = msg.get("content")
        has_images = has_images or _has_image(content)
        if role == "user":
            last_user = content
        elif role in _SYSTEM_ROLES:
            system_chars += len(_text_of(content))
    return has_images, system_chars, _text_of(last_user)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(str(p.get("text", "")) for p in content
                     if isinstance(p, dict) and p.get("type") == "text")


def _response_format(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if kind in _RESPONSE_FORMATS else None
