"""OpenAI chat completions and every vendor that speaks it (see ``vendors.py``).

The body is already OpenAI-shaped, so mapping is parameter policy only: rename what a vendor
spells differently, drop what it rejects, and always ask for the usage chunk when streaming
so streamed traffic is priced even when the client did not ask for usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from thrifty.core.memo import IdentityMemo
from thrifty.core.request import ChatRequest
from thrifty.core.response import Completion
from thrifty.core.usage import Usage, usage_from_openai
from thrifty.errors import ThriftyError, UpstreamBadResponse
from thrifty.providers.base import Target, UpstreamRequest, auth_headers
from thrifty.providers.upstream_errors import classify, error_fields

_STREAM_USAGE = {"include_usage": True}


def map_params(body: dict[str, Any], target: Target, *, stream: bool) -> dict[str, Any]:
    out = dict(body)
    out["model"] = target.upstream_model
    for src, dst in target.rename_params.items():
        if src in out:
            value = out.pop(src)
            out.setdefault(dst, value)
    for name in target.drop_params:
        out.pop(name, None)
    if stream:
        out["stream"] = True
        if "stream_options" not in target.drop_params:
            out["stream_options"] = _STREAM_USAGE
    else:
        out.pop("stream", None)
        out.pop("stream_options", None)
    rf = out.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema" and "json_schema" not in (
        target.info.capabilities
    ):
        _degrade_json_schema(out, rf)
    return out


def _degrade_json_schema(out: dict[str, Any], rf: dict[str, Any]) -> None:
    """A model without structured outputs gets JSON mode plus the schema as an instruction,
    so the call still works and the answer still aims at the schema."""
    out["response_format"] = {"type": "json_object"}
    schema = rf.get("json_schema", {}).get("schema")
    if isinstance(schema, dict):
        hint = {"role": "system", "content": "Respond with one JSON object matching this JSON "
                "schema: " + orjson.dumps(schema).decode()}
        out["messages"] = [hint, *out["messages"]]


def chat_url(target: Target) -> str:
    if target.deployment:  # Azure OpenAI addresses a deployment, versioned by query
        version = target.api_version or "2024-10-21"
        base = target.base_url.rstrip("/")
        path = f"openai/deployments/{target.deployment}/chat/completions"
        return f"{base}/{path}?api-version={version}"
    return f"{target.base_url.rstrip('/')}/chat/completions"


def _address(target: Target) -> tuple[str, Mapping[str, str]]:
    return chat_url(target), auth_headers(target)


class OpenAIStreamDecoder:
    __slots__ = ("done", "finish_reason", "provider", "usage")

    def __init__(self, provider: str) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.provider = provider

    def feed(self, event: str | None, data: bytes) -> list[dict[str, Any]]:
        if data == b"[DONE]":
            self.done = True
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(
                f"provider {self.provider} sent a malformed stream event", provider=self.provider
            ) from exc
        if not isinstance(chunk, dict):
            raise UpstreamBadResponse(
                f"provider {self.provider} sent a non-object stream event", provider=self.provider
            )
        if "error" in chunk:
            message, _, _ = error_fields(data)
            raise UpstreamBadResponse(
                f"provider {self.provider} failed mid-stream: {message}", provider=self.provider
            )
        usage = chunk.get("usage")
        if usage:
            self.usage = usage_from_openai(usage)
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return [chunk]


class OpenAIAdapter:
    wire = "openai"

    def __init__(self) -> None:
        # the URL and headers are fixed per deployment: built once, not per request
        self._address = IdentityMemo(_address)

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool) -> UpstreamRequest:
        body = map_params(req.body, target, stream=stream)
        url, headers = self._address(target)
        return UpstreamRequest(url, headers, orjson.dumps(body))

    def parse_response(self, body: bytes, req: ChatRequest, target: Target) -> Completion:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponse(
                f"provider {target.provider} sent malformed JSON", provider=target.provider
            ) from exc
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise UpstreamBadResponse(
                f"provider {target.provider} sent a completion without choices",
                provider=target.provider,
            )
        return Completion(
            body=data,
            usage=usage_from_openai(data.get("usage")),
            finish_reason=choices[0].get("finish_reason"),
        )

    def stream_decoder(self, req: ChatRequest, target: Target) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(target.provider)

    def classify_error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> ThriftyError:
        return classify(status, headers, body, provider=target.provider, api_key=target.api_key)
