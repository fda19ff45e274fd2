"""What routing knows about a request, read once from its body: sizes, needs (tools, images,
structured output), the last user turn and the caller's tags. Pure and cheap (it runs on
every routed request: about 4 us for a 1 KB request); the language is detected only when a
rule asks for it. Must not call providers or mutate the request."""

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
        needs: set[str] = set()
        if self.has_tools:
            needs.add("tools")
        if self.has_images:
            needs.add("vision")
        if self.response_format == "json_schema":
            needs.add("json_schema")
        return frozenset(needs)


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
    tokens = estimate_prompt_tokens(body)
    if tools:
        tokens += len(orjson.dumps(tools)) // _CHARS_PER_TOKEN
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
        if isinstance(content, list):
            has_images = has_images or any(
                isinstance(p, dict) and p.get("type") == "image_url" for p in content)
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
