"""The provider contract.

An adapter is pure: it builds the upstream HTTP request from a :class:`ChatRequest` and a
:class:`Target`, parses the upstream body (or stream events) back into OpenAI shapes, and
classifies upstream errors. It never opens a socket, reads a key from the environment,
retries or prices anything; ``transport.py`` sends what it builds.

Example, an adapter for a hypothetical vendor::

    class EchoAdapter:
        wire = "echo"

        def build_request(self, req, target, *, stream):
            body = orjson.dumps({"text": req.body["messages"][-1]["content"]})
            return UpstreamRequest(f"{target.base_url}/echo", {"x-key": target.api_key}, body)

        def parse_response(self, body, req, target):
            data = orjson.loads(body)
            return Completion(openai_completion(req, target, data["text"]), usage=None)

        def stream_decoder(self, req, target):
            return EchoDecoder(req, target)

        def classify_error(self, status, headers, body, target):
            return error_for_status(status, body.decode(errors="replace"), provider=target.provider)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from thrifty.core.request import ChatRequest
from thrifty.core.response import Completion, StreamDecoder
from thrifty.errors import ThriftyError
from thrifty.pricing.price import ModelInfo


@dataclass(frozen=True, slots=True)
class Target:
    """One concrete place a request can go: a provider account and an upstream model."""

    model: str
    """The public name clients use (``gpt-4o-mini`` or an alias target)."""
    provider: str
    """The configured provider name (``openai``, ``my-azure``, ...)."""
    wire: str
    """Which adapter speaks to it: ``openai``, ``anthropic`` or ``gemini``."""
    upstream_model: str
    base_url: str
    info: ModelInfo
    api_key: str | None = field(default=None, repr=False)
    auth: str = "bearer"
    """How the key is presented: bearer, api-key, x-api-key, x-goog-api-key or none."""
    headers: Mapping[str, str] = field(default_factory=dict)
    drop_params: frozenset[str] = frozenset()
    rename_params: Mapping[str, str] = field(default_factory=dict)
    api_version: str | None = None
    deployment: str | None = None
    """Azure OpenAI deployment name: the URL addresses it instead of the model."""
    region: str | None = None
    """Data-region tag of the provider account (``eu``, ``us-east``), for constraints."""

    weight: float = 1.0
    """Share of traffic among the deployments of one logical model."""

    key: str = field(init=False, repr=False, compare=False)
    """The deployment's identity for health and stats: ``provider/upstream_model``
    (``provider/deployment`` for Azure deployments). Computed once: every attempt reads it
    several times (stats, health, metrics, drift)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key",
                           f"{self.provider}/{self.deployment or self.upstream_model}")


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: Mapping[str, str]
    body: bytes


class WireAdapter(Protocol):
    wire: str

    def build_request(
        self, req: ChatRequest, target: Target, *, stream: bool
    ) -> UpstreamRequest: ...

    def parse_response(self, body: bytes, req: ChatRequest, target: Target) -> Completion: ...

    def stream_decoder(self, req: ChatRequest, target: Target) -> StreamDecoder: ...

    def classify_error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> ThriftyError: ...


def auth_headers(target: Target) -> dict[str, str]:
    """The key in the header the vendor expects, plus the target's extra headers."""
    headers = {"content-type": "application/json", **target.headers}
    key = target.api_key
    if key:
        if target.auth == "bearer":
            headers["authorization"] = f"Bearer {key}"
        elif target.auth != "none":
            headers[target.auth] = key
    return headers
