"""Logs: one JSON object per line (or plain text), with the request id when one is known,
and secrets redacted from every message and traceback on the way out.

Redaction is a last line of defence, applied in the formatter so no logger can bypass it:
anything shaped like a key (``tk-...`` virtual keys, ``sk-...`` vendor keys, Google
``AIza...`` keys, ``Bearer ...`` tokens) and the exact values of the master key and the
providers' keys become ``[redacted]``."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import orjson

from thrifty.config.telemetry import LogsConfig

REDACTED = "[redacted]"
REQUEST_ID: ContextVar[str | None] = ContextVar("thrifty_request_id", default=None)
"""The request being handled by the current task (set by the HTTP handler)."""

_KEY_SHAPES = re.compile(
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{6,}"   # Authorization header values
    r"|\btk-[A-Za-z0-9_-]{8,}"               # thrifty virtual keys
    r"|\bsk-[A-Za-z0-9_-]{8,}"               # OpenAI / Anthropic style keys
    r"|\bAIza[A-Za-z0-9_-]{20,}"             # Google API keys
)
_MIN_SECRET = 6  # shorter values would redact ordinary words


class Redactor:
    """Replaces key-shaped strings and the given secret values."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        exact = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len,
                       reverse=True)
        self._exact = re.compile("|".join(map(re.escape, exact))) if exact else None

    def __call__(self, text: str) -> str:
        if self._exact is not None:
            text = self._exact.sub(REDACTED, text)
        return _KEY_SHAPES.sub(REDACTED, text)


class _Redacting(logging.Formatter):
    def __init__(self, redact: Redactor, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.redact = redact

    def format_exception(self, record: logging.LogRecord) -> str | None:
        if record.exc_info:
            return self.redact(self.formatException(record.exc_info))
        return None


class JsonFormatter(_Redacting):
    """``{"ts", "level", "logger", "message", "request_id"?, "exc"?, ...}`` per line; the
    fields of ``extra={"fields": {...}}`` are added at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or REQUEST_ID.get()
        if rid:
            out["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for k, v in fields.items():
                out.setdefault(k, v)
        exc = self.format_exception(record)
        if exc:
            out["exc"] = exc
        text = orjson.dumps(out, default=str).decode()
        # fields may nest anything (a logged request body): redact the whole line; the key
        # patterns match no quote or backslash, so the JSON stays valid
        return self.redact(text) if fields else text


class TextFormatter(_Redacting):
    """``2025-01-01T00:00:00.000Z info thrifty.gateway [thr-...] message``."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None) or REQUEST_ID.get()
        line = (f"{_iso(record.created)} {record.levelname.lower()} {record.name}"
                f"{f' [{rid}]' if rid else ''} {self.redact(record.getMessage())}")
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + self.redact(" ".join(f"{k}={v}" for k, v in fields.items()))
        exc = self.format_exception(record)
        return f"{line}\n{exc}" if exc else line


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def configure_logging(cfg: LogsConfig, secrets: Iterable[str | None] = (),
                      stream: Any = None) -> logging.Handler:
    """Send every ``thrifty.*`` log (and aiohttp's) to stderr in the configured format,
    with ``secrets`` redacted. Replaces a handler installed by an earlier call."""
    redact = Redactor(secrets)
    formatter = JsonFormatter(redact) if cfg.format == "json" else TextFormatter(redact)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("thrifty")
    level = getattr(logging, cfg.level.upper())
    for name in ("thrifty", "aiohttp"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "thrifty"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return handler
