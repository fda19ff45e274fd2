"""The contract between the fake server and its three wires: what a wire parses out of a
request (:class:`Call`), the errors it answers with (:class:`WireError`), the stream frames
it renders, and the :class:`Wire` Protocol itself. The server owns timing, faults, the
prompt cache and stats; a wire owns only its vendor's shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from thrifty.core.usage import Usage
from thrifty.fake.brain import Prompt, Reply
from thrifty.fake.usage import Segment


@dataclass(slots=True)
class Call:
    """One parsed chat request."""

    model: str
    prompt: Prompt
    segments: list[Segment]
    stream: bool
    explicit_cache: bool = False
    """Anthropic ``cache_control`` rules instead of automatic prefix caching."""
    include_usage: bool = False
    """OpenAI ``stream_options.include_usage``."""
    sse: bool = True
    """Gemini: ``alt=sse`` events, or else one JSON array streamed."""
    show_thinking: bool = False
    """Return the reasoning text (Anthropic thinking blocks, Gemini ``includeThoughts``)."""
    serial: int = 0
    """Set by the server: the request's number on this fake, for unique response ids."""


class WireError(Exception):
    """A vendor-shaped error response: status, JSON body and headers."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body[:200]!r}")
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self, extra_headers: dict[str, str]) -> web.Response:
        return web.Response(
            status=self.status,
            body=self.body,
            content_type="application/json",
            headers={**extra_headers, **self.headers},
        )


@dataclass(frozen=True, slots=True)
class Frame:
    """One write of a stream and the output tokens it carries (for pacing)."""

    data: bytes
    tokens: int = 0


class Wire(Protocol):
    name: str

    def add_routes(self, router: web.UrlDispatcher, chat: Any, models: Any) -> None:
        """Register ``chat`` (POST) and ``models`` (GET) under the vendor's paths."""

    def headers(self) -> dict[str, str]:
        """Headers every response carries (a request id)."""

    def authenticate(self, request: web.Request, api_key: str | None) -> WireError | None: ...

    def invalid(self, message: str, param: str | None = None) -> WireError:
        """The vendor's 400 for a bad request."""

    def parse(self, request: web.Request, body: Any) -> Call:
        """The call, or raise :class:`WireError` as the vendor would."""

    def fault(self, kind: str) -> WireError:
        """The vendor's response to an injected status fault (429, 500, 503, 529)."""

    def usage_body(self, usage: Usage) -> dict[str, Any]:
        """``usage`` in the vendor's field names and conventions."""

    def render(self, call: Call, reply: Reply, usage: Usage) -> bytes:
        """The non-streaming response body."""

    def frames(self, call: Call, reply: Reply, usage: Usage) -> list[Frame]:
        """The streaming response, in the vendor's event order."""

    def stream_type(self, call: Call) -> str:
        """Content type of the stream (``text/event-stream``)."""

    def broken_frame(self, call: Call) -> bytes:
        """A stream frame whose payload is not valid JSON."""

    def models(self) -> bytes:
        """The body of the vendor's model listing."""


def sse(data: bytes, event: str | None = None) -> bytes:
    """One Server-Sent Event (``data`` must not contain a newline: orjson output never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def argument_fragments(arguments: bytes, size: int = 24) -> list[str]:
    """A tool call's JSON arguments in pieces, as vendors stream them."""
    text = arguments.decode()
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
