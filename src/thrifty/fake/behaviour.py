"""A fake's behaviour, changeable mid-run so tests can make a "model" drift: slower first
bytes, shorter answers, refusals, more faults, broken JSON. Set it in-process
(``RunningFake.set_behaviour``) or over HTTP (``POST /_fake/behaviour`` with a JSON object
of these fields; fields left out return to their defaults, ``{}`` restores the start-up
behaviour). ``shape`` is pure: a reply and the fake's seeded random draws in, a reply out.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from thrifty.fake.brain import ECHO_PREFIX, Prompt, Reply, filler, split_words
from thrifty.fake.usage import text_tokens

REFUSAL = "I'm sorry, but I can't help with that request."


class Behaviour(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float | None = Field(default=None, ge=0)
    """Delay before the first byte, replacing the start-up ``latency_ms`` (the
    ``x-fake-latency-ms`` header still wins)."""
    output_words: int | None = Field(default=None, ge=1)
    """Plain-text replies (not echo:, JSON or tool calls) are this many filler words."""
    refuse_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of replies (other than tool calls) replaced by a refusal."""
    error_rate: float | None = Field(default=None, ge=0, le=1)
    """Fault rate, replacing the start-up ``error_rate``."""
    bad_json_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of JSON replies wrapped in a ```json fence (invalid in JSON mode)."""


def shape(reply: Reply, prompt: Prompt, b: Behaviour, rng: random.Random) -> Reply:
    """``reply`` as a fake behaving as ``b`` would send it. Tool calls are left alone."""
    if reply.tool_calls:
        return reply
    if b.refuse_rate and rng.random() < b.refuse_rate:
        return _text_reply(reply, REFUSAL)
    is_json = reply.text[:1] in ("{", "[")
    if is_json:
        if b.bad_json_rate and rng.random() < b.bad_json_rate:
            fenced = f"```json\n{reply.text}\n```"
            return _text_reply(reply, fenced, text_tokens(fenced))
        return reply
    echo = prompt.last_user_text.lstrip().startswith(ECHO_PREFIX)
    if b.output_words is not None and not echo:
        words = min(b.output_words, prompt.max_tokens or b.output_words)
        return _text_reply(reply, filler(random.Random(reply.key), words))
    return reply


def _text_reply(reply: Reply, text: str, tokens: int | None = None) -> Reply:
    """A text reply; one token a word unless ``tokens`` says otherwise (JSON: by chars)."""
    pieces = tuple(split_words(text))
    n = max(1, len(pieces))
    return Reply(reply.key, text, pieces, max(1, (tokens or n) // n), (), reply.thinking,
                 tokens or n, reply.reasoning_tokens, "stop")
