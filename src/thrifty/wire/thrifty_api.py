"""Ingress for thrifty's own endpoints (``/v1/thrifty/...``), validated like the OpenAI
ones: 400s name the offending param."""

from __future__ import annotations

import orjson

from thrifty.errors import InvalidRequest


def parse_feedback(raw: bytes) -> tuple[str, float]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
    rid = body.get("request_id")
    if not isinstance(rid, str) or not rid:
        raise InvalidRequest("'request_id' must be the x-thrifty-request-id of a request",
                             param="request_id", code="invalid_type")
    score = body.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise InvalidRequest("'score' must be a number between 0 and 1", param="score",
                             code="invalid_value")
    return rid, float(score)
