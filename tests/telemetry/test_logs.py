"""Structured logs: one JSON object per line with the request id, secrets redacted from
messages and tracebacks, the access log from the observer, and bodies only when enabled
(for every key, or for the listed ones)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.conftest import Fakes, GatewayFactory, standard_config
from thrifty.config.telemetry import LogsConfig
from thrifty.core.request import ChatRequest
from thrifty.telemetry.access import AccessLog, BodyLog, stream_text
from thrifty.telemetry.logs import REDACTED, REQUEST_ID, Redactor, configure_logging

from .outcomes import finished, ok, targets

VIRTUAL_KEY = "tk-" + "A1b2C3d4" * 5 + "xyz"
VENDOR_KEY = "sk-proj-abcdefghijklmnop0123"
MASTER = "correct-horse-battery-staple"  # no key shape: only the exact value can catch it


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """JSON logs of ``thrifty.*`` into a buffer; the loggers restored afterwards."""
    loggers = [logging.getLogger(n) for n in ("thrifty", "aiohttp")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    buf = io.StringIO()
    configure_logging(LogsConfig(format="json", level="info"), secrets=[MASTER], stream=buf)
    yield buf
    for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def lines(buf: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in buf.getvalue().splitlines()]


def test_a_json_line_per_record_with_the_request_id(captured: io.StringIO) -> None:
    token = REQUEST_ID.set("thr-abc123")
    try:
        logging.getLogger("thrifty.gateway").info("routed %s", "cheap")
    finally:
        REQUEST_ID.reset(token)
    logging.getLogger("thrifty.gateway").debug("below the level")
    [line] = lines(captured)
    assert line["message"] == "routed cheap"
    assert line["request_id"] == "thr-abc123"
    assert line["level"] == "info" and line["logger"] == "thrifty.gateway"
    assert line["ts"].endswith("Z")


def test_keys_in_messages_are_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("thrifty.server")
    log.warning("client sent %s", VIRTUAL_KEY)
    log.warning("upstream said: Incorrect API key provided: %s", VENDOR_KEY)
    log.warning("header was Authorization: Bearer %s", MASTER)
    log.warning("master key is %s", MASTER)
    text = captured.getvalue()
    for secret in (VIRTUAL_KEY, VENDOR_KEY, MASTER, "A1b2C3d4"):
        assert secret not in text
    assert text.count(REDACTED) == 4
    assert lines(captured)[0]["message"] == f"client sent {REDACTED}"


def test_keys_in_exceptions_are_redacted(captured: io.StringIO) -> None:
    try:
        raise RuntimeError(f"provider rejected key {VENDOR_KEY} (master {MASTER})")
    except RuntimeError:
        logging.getLogger("thrifty.gateway").exception("observer failed")
    [line] = lines(captured)
    assert "RuntimeError" in line["exc"]
    assert VENDOR_KEY not in captured.getvalue() and MASTER not in captured.getvalue()


def test_text_format_redacts_too() -> None:
    buf = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("thrifty", "aiohttp")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    try:
        configure_logging(LogsConfig(format="text"), secrets=[MASTER], stream=buf)
        logging.getLogger("thrifty.x").error("key %s and %s", VIRTUAL_KEY, MASTER)
    finally:
        for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
    out = buf.getvalue()
    assert " error thrifty.x key [redacted] and [redacted]" in out
    assert VIRTUAL_KEY not in out and MASTER not in out


def test_redactor_leaves_ordinary_text_alone() -> None:
    r = Redactor(["abc"])  # too short to be a secret: would redact ordinary words
    text = "task-force sk-8 model gpt-4o-mini costs $0.15; the abc of it"
    assert r(text) == text


def test_access_log_line_from_the_observer(captured: io.StringIO) -> None:
    t = targets()
    AccessLog().request_done(*finished([ok(t["mini"])], key_id="key_1", team="research"))
    [line] = lines(captured)
    assert line["logger"] == "thrifty.access"
    assert line["request_id"] == "thr-test-1"
    assert line["status"] == 200 and line["provider"] == "openai"
    assert line["cost_usd"] > 0 and line["latency_ms"] == 100.0
    assert line["key_id"] == "key_1" and line["team"] == "research"


def test_bodies_only_for_the_keys_they_are_enabled_for(captured: io.StringIO) -> None:
    bodies = BodyLog(every_key=False, key_ids=["key_vip"])

    def req(key: str | None) -> ChatRequest:
        return ChatRequest(body={"messages": [{"role": "user", "content": f"hi {VENDOR_KEY}"}]},
                           model="m", stream=False, include_usage=False,
                           request_id=f"thr-{key}", key_id=key)

    answer = orjson.dumps({"choices": [{"message": {"content": "hello"}}]})
    bodies.completion(req("key_other"), answer)
    bodies.completion(req(None), answer)
    bodies.completion(req("key_vip"), answer)
    [line] = lines(captured)
    assert line["request_id"] == "thr-key_vip"
    assert line["response"]["choices"][0]["message"]["content"] == "hello"
    assert line["request"]["messages"][0]["content"] == f"hi {REDACTED}"
    assert BodyLog.from_config(LogsConfig()) is None


def test_stream_text_joins_the_content_deltas() -> None:
    events = [b'data: {"choices":[{"delta":{"role":"assistant","content":"Hel"}}]}\n\n',
              b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\ndata: [DONE]\n\n']
    assert stream_text(events) == "Hello"


async def test_bodies_and_access_log_through_the_server(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path,
        captured: io.StringIO) -> None:
    cfg = standard_config(fakes, tmp_path / "ledger.db")
    cfg["telemetry"] = {"logs": {"access_log": True, "log_bodies": True}}
    gw = await gateway_factory(cfg)
    prompt = {"model": "oa-mini", "messages": [{"role": "user", "content": "say hi"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.v1}/chat/completions", json=prompt) as r:
            answer = await r.json()
        async with s.post(f"{gw.v1}/chat/completions", json={**prompt, "stream": True}) as r:
            await r.read()
    found = lines(captured)
    access = [x for x in found if x["logger"] == "thrifty.access"]
    bodies = [x for x in found if x["logger"] == "thrifty.bodies"]
    assert len(access) == 2 and {a["stream"] for a in access} == {True, False}
    assert len(bodies) == 2
    assert bodies[0]["request"]["messages"][0]["content"] == "say hi"
    assert bodies[0]["response"]["choices"] == answer["choices"]
    assert bodies[1]["response"]["content"]  # the streamed text, reassembled
    assert {b["request_id"] for b in bodies} == {a["request_id"] for a in access}
