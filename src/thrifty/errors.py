"""The one error tree of thrifty. Every error knows its HTTP status, its OpenAI error
``type``/``code`` and whether another attempt may succeed; the server turns any of them into
the OpenAI error JSON shape. Upstream errors are classified by status and structured fields
(see each provider's ``classify_error``), never by message substrings.

    ThriftyError
    ├── ClientError                      the caller's request is at fault (4xx)
    │   ├── InvalidRequest               400  malformed JSON, wrong field type, bad value
    │   │   ├── ContextWindowExceeded    400  prompt + max output exceed the model's window
    │   │   └── ContentPolicyViolation   400  the provider refused the content
    │   ├── AuthenticationFailed         401  missing or wrong gateway key
    │   ├── PermissionDenied             403  key may not use this model
    │   ├── NotFound                     404  no such path
    │   │   └── ModelNotFound            404  no such model or alias
    │   ├── PayloadTooLarge              413  body over the configured limit
    │   ├── RateLimited                  429  a gateway limit, or an upstream 429
    │   └── BudgetExceeded               429  a spending budget has no room for the request
    ├── UpstreamError                    the provider failed us (5xx)
    │   ├── UpstreamAuthFailed           502  the provider refused our key (provider named)
    │   ├── UpstreamBadResponse          502  malformed body, unexpected shape, stream cut
    │   ├── UpstreamUnavailable          503  provider 5xx, connection refused or reset
    │   └── UpstreamTimeout              504  connect / first-token / total deadline passed
    ├── LimitsUnavailable                503  the budget counters cannot be reached (fail closed)
    └── ConfigError                      the configuration is invalid (raised at load time)
"""

from __future__ import annotations

from typing import Any


class ThriftyError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = "internal_error"
    """OpenAI-style machine-readable code; ``None`` where OpenAI sends null."""
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        provider: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.provider = provider
        self.retry_after = retry_after
        if code is not None:
            self.code = code

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
        err: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if self.provider is not None:
            err["provider"] = self.provider
        return {"error": err}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(1, round(self.retry_after)))}


class ClientError(ThriftyError):
    status = 400
    type = "invalid_request_error"
    code: str | None = None


class InvalidRequest(ClientError):
    status = 400
    code = "invalid_request"


class ContextWindowExceeded(InvalidRequest):
    code = "context_length_exceeded"


class ContentPolicyViolation(InvalidRequest):
    code = "content_policy_violation"


class AuthenticationFailed(ClientError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ClientError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class NotFound(ClientError):
    status = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class PayloadTooLarge(ClientError):
    status = 413
    code = "request_too_large"


class RateLimited(ClientError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class BudgetExceeded(ClientError):
    """A USD budget (of a key, team, model, ... in a window) cannot cover the request's
    maximum possible cost. Not retryable: waiting only helps when the window turns."""

    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"


class UpstreamError(ThriftyError):
    status = 502
    type = "upstream_error"
    code = "upstream_error"
    retryable = True


class UpstreamAuthFailed(UpstreamError):
    status = 502
    code = "upstream_authentication_failed"
    retryable = False


class UpstreamBadResponse(UpstreamError):
    status = 502
    code = "upstream_bad_response"


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout_error"
    code = "upstream_timeout"


class LimitsUnavailable(ThriftyError):
    """The counters that enforce budgets (Redis, SQLite) failed: refusing is the only way to
    keep the guarantee that no budget is overspent, so the request gets a retryable 503."""

    status = 503
    type = "server_error"
    code = "limits_unavailable"
    retryable = True


class ConfigError(ThriftyError):
    """Raised while loading configuration; the message names the key, the value and the fix."""

    code = "config_error"


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    retry_after: float | None = None,
    code: str | None = None,
) -> ThriftyError:
    """Map an upstream HTTP status to the error tree (the shared part of classify_error)."""
    if status in (401, 403):
        return UpstreamAuthFailed(
            f"provider {provider} rejected the gateway's credentials ({status})",
            provider=provider,
        )
    if status == 429:
        return RateLimited(
            f"provider {provider} is rate limiting: {message}",
            provider=provider,
            retry_after=retry_after,
        )
    if status == 413:
        return PayloadTooLarge(message, provider=provider)
    if status == 404:
        return UpstreamBadResponse(
            f"provider {provider} does not know the model or route: {message}", provider=provider
        )
    if status in (408, 504):
        return UpstreamTimeout(f"provider {provider} timed out: {message}", provider=provider)
    if 400 <= status < 500:
        return InvalidRequest(f"provider {provider} rejected the request: {message}",
                              provider=provider, code=code)
    return UpstreamUnavailable(
        f"provider {provider} failed with {status}: {message}",
        provider=provider,
        retry_after=retry_after,
    )
