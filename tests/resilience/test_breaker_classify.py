"""classify(): the error tree's classes and codes decide, never the message text."""

from __future__ import annotations

import pytest

from thrifty.errors import (
    AuthenticationFailed,
    ConfigError,
    ContentPolicyViolation,
    ContextWindowExceeded,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ThriftyError,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_for_status,
)
from thrifty.resilience.breaker import ErrorClass, classify

P = "openai"


@pytest.mark.parametrize(("exc", "expected"), [
    (RateLimited("slow down", provider=P, retry_after=2), ErrorClass.RATE_LIMIT),
    (RateLimited("gateway limit for this key"), ErrorClass.CLIENT),
    (UpstreamUnavailable("503", provider=P), ErrorClass.SERVER),
    (UpstreamUnavailable("refused", provider=P, code="upstream_connection_failed"),
     ErrorClass.CONNECTION),
    (UpstreamError("other", provider=P), ErrorClass.SERVER),
    (UpstreamTimeout("slow", provider=P), ErrorClass.TIMEOUT),
    (UpstreamAuthFailed("key", provider=P), ErrorClass.AUTH),
    (UpstreamAuthFailed("billing", provider=P, code="upstream_billing_error"), ErrorClass.AUTH),
    (UpstreamBadResponse("junk", provider=P), ErrorClass.BAD_RESPONSE),
    (InvalidRequest("bad", provider=P), ErrorClass.CLIENT),
    (ContextWindowExceeded("long", provider=P), ErrorClass.CLIENT),
    (ContentPolicyViolation("no", provider=P), ErrorClass.CLIENT),
    (PayloadTooLarge("big", provider=P), ErrorClass.CLIENT),
    (AuthenticationFailed("gateway key"), ErrorClass.CLIENT),
    (PermissionDenied("model"), ErrorClass.CLIENT),
    (ModelNotFound("nope"), ErrorClass.CLIENT),
    (ConfigError("bad config"), ErrorClass.CLIENT),
    (ThriftyError("our bug"), ErrorClass.CLIENT),
])
def test_classes(exc: ThriftyError, expected: ErrorClass) -> None:
    assert classify(exc) is expected


@pytest.mark.parametrize(("status", "expected"), [
    (401, ErrorClass.AUTH), (403, ErrorClass.AUTH), (429, ErrorClass.RATE_LIMIT),
    (500, ErrorClass.SERVER), (502, ErrorClass.SERVER), (503, ErrorClass.SERVER),
    (529, ErrorClass.SERVER), (408, ErrorClass.TIMEOUT), (504, ErrorClass.TIMEOUT),
    (404, ErrorClass.BAD_RESPONSE), (400, ErrorClass.CLIENT), (422, ErrorClass.CLIENT),
    (413, ErrorClass.CLIENT),
])
def test_upstream_statuses(status: int, expected: ErrorClass) -> None:
    assert classify(error_for_status(status, "x", provider=P)) is expected


def test_message_text_is_ignored() -> None:
    words = "rate limit exceeded timeout connection refused unauthorized 503 overloaded"
    assert classify(InvalidRequest(words, provider=P)) is ErrorClass.CLIENT
    assert classify(UpstreamUnavailable(words, provider=P)) is ErrorClass.SERVER
