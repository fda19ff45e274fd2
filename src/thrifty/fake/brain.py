"""Deterministic generation for the fake providers: a reply is a pure function of
(seed, model, conversation). ``echo:`` replies are exact; other replies are filler sentences
whose length follows the prompt hash; tools, JSON output (also when a system turn asks for
it), stop sequences, max tokens and reasoning follow the request. Vendor wire formats and
prompt token accounting live elsewhere (``*_wire.py``, ``usage.py``); nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any

import orjson

from thrifty.fake.schema_values import sample_value
from thrifty.fake.usage import text_tokens

ECHO_PREFIX = "echo:"
_WORDS = (
    "the", "gateway", "routes", "each", "request", "to", "a", "model", "that", "fits",
    "budget", "and", "latency", "while", "cache", "keeps", "tokens", "cheap", "answer",
    "is", "clear", "short", "useful", "provider", "returns", "stream", "of", "small",
    "chunks", "with", "usage", "cost", "stays", "low", "when", "prompt", "repeats",
    "fallback", "handles", "errors", "quietly", "so", "users", "see", "fast", "results",
    "every", "plan", "checks", "limits", "before", "it", "spends", "money", "on", "work",
)  # fmt: skip
# Short names ("o3", "r1") must stand alone so that "gpt-4o" or "pro-001" do not match.
_REASONING_MODEL = re.compile(r"(?:^|[^a-z0-9])(?:o1|o3|o4|r1)(?:$|[^a-z0-9])|reasoning|thinking")
_EFFORT_TOKENS = {"minimal": 16, "low": 64, "medium": 192, "high": 512}
_PIECE = re.compile(r"\s*\S+")
_ASKS = re.compile(r"\b(?:respond|reply|answer|return|output)\b", re.IGNORECASE)
_DECODER = json.JSONDecoder()
_JSON_PIECE_CHARS = 16


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    parameters: Any
    """The function's JSON schema (Gemini's upper-case OpenAPI types are fine)."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """The vendor-neutral part of a request that decides the reply."""

    model: str
    turns: tuple[tuple[str, str], ...]
    """``(role, text)`` in order; roles are system, user, assistant or tool (a tool result)."""
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    """``auto``, ``none``, ``required`` or the name of a forced tool."""
    parallel_tools: bool = True
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    output: str = "text"
    """``text``, ``json_object`` or ``json_schema`` (then ``schema`` holds the schema)."""
    schema: Any = None
    reasoning: str | None = None
    """Effort (minimal/low/medium/high), ``none`` to disable, None for the model's default."""
    reasoning_budget: int | None = None

    @property
    def last_role(self) -> str:
        return self.turns[-1][0] if self.turns else "user"

    @property
    def last_user_text(self) -> str:
        return next((text for role, text in reversed(self.turns) if role == "user"), "")


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    """A unique hex suffix; each wire adds its vendor prefix (``call_``, ``toolu_``)."""
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    key: str
    """Hex digest naming this generation; response ids derive from it."""
    text: str
    pieces: tuple[str, ...]
    """``text`` split for streaming: ``"".join(pieces) == text``."""
    tokens_per_piece: int
    tool_calls: tuple[ToolCall, ...]
    thinking: str
    content_tokens: int
    reasoning_tokens: int
    finish: str
    """``stop``, ``length``, ``stop_sequence`` or ``tool_calls``."""
    stop_sequence: str | None = None

    @property
    def output_tokens(self) -> int:
        return self.content_tokens + self.reasoning_tokens

    def chunks(self, tokens: int = 4) -> list[tuple[str, int]]:
        """The text as stream deltas of about ``tokens`` tokens each: ``(text, tokens)``."""
        step = max(1, tokens // self.tokens_per_piece)
        groups = [self.pieces[i : i + step] for i in range(0, len(self.pieces), step)]
        return [("".join(g), len(g) * self.tokens_per_piece) for g in groups]


def split_words(text: str) -> list[str]:
    """Word pieces carrying their leading whitespace; they join back to ``text`` exactly."""
    pieces = _PIECE.findall(text)
    consumed = sum(map(len, pieces))
    if consumed < len(text):
        if pieces:
            pieces[-1] += text[consumed:]
        else:
            pieces = [text]
    return pieces


def filler(rng: random.Random, words: int) -> str:
    """``words`` plausible filler words in sentences (one word is one output token)."""
    out: list[str] = []
    until_period = rng.randint(7, 14)
    capital = True
    for i in range(words):
        word = rng.choice(_WORDS)
        out.append(word.capitalize() if capital else word)
        until_period -= 1
        capital = until_period == 0 or i == words - 1
        if capital:
            out[-1] += "."
            until_period = rng.randint(7, 14)
    return " ".join(out)


def think(prompt: Prompt, seed: int) -> Reply:
    """The reply to ``prompt`` for a fake seeded with ``seed``."""
    hasher = hashlib.blake2b(f"{seed}\x00{prompt.model}".encode(), digest_size=16)
    for role, text in prompt.turns:
        hasher.update(f"\x1e{role}\x1f{text}".encode())
    key = hasher.hexdigest()
    rng = random.Random(key)
    reasoning = _reasoning_tokens(prompt, rng)
    thinking = filler(rng, reasoning) if reasoning else ""
    calls = _tool_calls(prompt, rng, key)
    if calls:
        tokens = sum(text_tokens(c.name) + text_tokens(orjson.dumps(c.arguments)) for c in calls)
        return Reply(key, "", (), 1, calls, thinking, tokens, reasoning, "tool_calls")
    text, is_json = _draft(prompt, rng)
    return _limit(prompt, key, text, is_json, thinking, reasoning)


def _is_echo(prompt: Prompt) -> bool:
    return prompt.last_role == "user" and prompt.last_user_text.lstrip().startswith(ECHO_PREFIX)


def _reasoning_tokens(prompt: Prompt, rng: random.Random) -> int:
    effort = prompt.reasoning
    if effort == "none":
        return 0
    if effort is None:
        if not _REASONING_MODEL.search(prompt.model.lower()):
            return 0
        effort = "medium"
    tokens = max(1, round(_EFFORT_TOKENS.get(effort, 192) * rng.uniform(0.5, 1.5)))
    if prompt.reasoning_budget is not None and prompt.reasoning_budget > 0:
        tokens = min(tokens, prompt.reasoning_budget)
    return tokens


def _tool_calls(prompt: Prompt, rng: random.Random, key: str) -> tuple[ToolCall, ...]:
    choice = prompt.tool_choice
    if not prompt.tools or choice == "none":
        return ()
    # "auto" calls a tool for a fresh user turn (unless it is an echo: request, which tests use
    # to pin the text), and answers in text after a tool result; "required" always calls.
    if choice == "auto" and (prompt.last_role != "user" or _is_echo(prompt)):
        return ()
    if choice not in ("auto", "required"):
        specs = [next((t for t in prompt.tools if t.name == choice), prompt.tools[0])]
    elif (
        prompt.parallel_tools
        and len(prompt.tools) >= 2
        and "parallel" in prompt.last_user_text.lower()
    ):
        specs = list(prompt.tools[:2])
    else:
        specs = [prompt.tools[0]]
    calls = []
    for i, spec in enumerate(specs):
        args = sample_value(spec.parameters, rng) if spec.parameters else {}
        calls.append(ToolCall(f"{key[:22]}{i}", spec.name, args if isinstance(args, dict) else {}))
    return tuple(calls)


def _instructed_json(prompt: Prompt) -> tuple[str, Any]:
    """A system turn that asks for JSON is obeyed, as a real model would: ``(output, schema)``
    where an embedded JSON schema (the object after the word "schema") is followed."""
    for role, text in prompt.turns:
        if role != "system" or "JSON" not in text or not _ASKS.search(text):
            continue
        at = text.lower().find("schema")
        start = text.find("{", at) if at >= 0 else -1
        if start >= 0:
            try:
                schema, _ = _DECODER.raw_decode(text, start)
            except ValueError:
                schema = None
            if isinstance(schema, dict):
                return "json_schema", schema
        return "json_object", None
    return "text", None


def _draft(prompt: Prompt, rng: random.Random) -> tuple[str, bool]:
    """The full reply before max_tokens and stop sequences: ``(text, is_json)``. An ``echo:``
    request wins over JSON output modes, so a test can pin any body it needs."""
    if _is_echo(prompt):
        return prompt.last_user_text.lstrip()[len(ECHO_PREFIX) :].strip(), False
    output, schema = prompt.output, prompt.schema
    if output == "text":
        output, schema = _instructed_json(prompt)
    if output == "json_schema" and schema is not None:
        return orjson.dumps(sample_value(schema, rng)).decode(), True
    if output in ("json_object", "json_schema"):
        body = {"answer": filler(rng, rng.randint(6, 14)), "confidence": round(rng.random(), 2)}
        return orjson.dumps(body).decode(), True
    if prompt.last_role == "tool":
        result = " ".join(prompt.turns[-1][1].split())
        snippet = result if len(result) <= 200 else result[:197] + "..."
        return f"The tool returned: {snippet}. {filler(rng, rng.randint(8, 24))}", False
    return filler(rng, rng.randint(20, 80)), False


def _limit(
    prompt: Prompt, key: str, text: str, is_json: bool, thinking: str, reasoning: int
) -> Reply:
    limit = prompt.max_tokens
    if is_json:
        # JSON is counted (and cut, producing invalid JSON as a real model does) by characters.
        finish = "stop"
        if limit is not None and text_tokens(text) > limit:
            text, finish = text[: limit * 4], "length"
        pieces = tuple(
            text[i : i + _JSON_PIECE_CHARS] for i in range(0, len(text), _JSON_PIECE_CHARS)
        )
        return Reply(key, text, pieces, 4, (), thinking, text_tokens(text), reasoning, finish)
    words = split_words(text)
    finish, matched = "stop", None
    if limit is not None and len(words) > limit:
        words, finish = words[: max(limit, 0)], "length"
        text = "".join(words)
    cut = min(
        ((text.find(s), s) for s in prompt.stop if s and s in text), default=None
    )
    if cut is not None:
        text, matched, finish = text[: cut[0]], cut[1], "stop_sequence"
        words = split_words(text)
    tokens = max(1, len(words))
    return Reply(key, text, tuple(words), 1, (), thinking, tokens, reasoning, finish, matched)
