"""Prompt token counting and the prompt-cache simulation of one fake provider.

A wire turns its request into :class:`Segment`s in the vendor's cache order (tools, system,
messages); this module counts them and decides what a cache would have served. Two rules:
``automatic`` (OpenAI and Gemini implicit caching: a shared prefix of >= 1024 tokens, counted
in steps of 128) and ``explicit`` (Anthropic ``cache_control`` breakpoints). The cache never
expires but is bounded; it is per fake instance and knows nothing about wire formats.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

IMAGE_TOKENS = 85
"""What one image costs, whatever its size (the fake does not decode images)."""
MESSAGE_TOKENS = 3
"""Per-message overhead, as OpenAI's counting recipe adds."""
MIN_CACHED_PREFIX = 1024
CACHE_STEP = 128
_MAX_ENTRIES = 100_000


def text_tokens(text: str | bytes) -> int:
    """About four characters per token, rounded up."""
    return (len(text) + 3) // 4


@dataclass(frozen=True, slots=True)
class Segment:
    """One cacheable unit of a prompt: a tool list, a system block or a message block."""

    content: bytes
    """What identifies the content (any stable encoding of it)."""
    tokens: int
    breakpoint: bool = False
    """Anthropic ``cache_control``: a cache entry may end after this segment."""


@dataclass(frozen=True, slots=True)
class PromptTokens:
    total: int
    """Every prompt token, cached or not (OpenAI's ``prompt_tokens``)."""
    cached: int = 0
    """Read from the cache."""
    cache_write: int = 0
    """Written to the cache (Anthropic ``cache_creation_input_tokens``)."""


def _prefix_hashes(segments: Sequence[Segment]) -> tuple[list[bytes], list[int]]:
    """A chained hash and the cumulative token count at the end of every segment."""
    hashes: list[bytes] = []
    totals: list[int] = []
    running = b""
    total = 0
    for seg in segments:
        running = hashlib.blake2b(running + seg.content, digest_size=16).digest()
        total += seg.tokens
        hashes.append(running)
        totals.append(total)
    return hashes, totals


class PromptCache:
    """The prefixes one fake has seen, to report cache hits the way its vendor would."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def clear(self) -> None:
        self._seen.clear()

    def _remember(self, keys: list[bytes]) -> None:
        if len(self._seen) + len(keys) > _MAX_ENTRIES:
            self._seen.clear()  # a crude eviction; a real cache forgets too
        self._seen.update(keys)

    def automatic(self, segments: Sequence[Segment]) -> PromptTokens:
        """OpenAI / Gemini implicit caching: the longest prefix (by whole segments) seen
        before, if at least 1024 tokens, rounded down to a multiple of 128."""
        hashes, totals = _prefix_hashes(segments)
        total = totals[-1] if totals else 0
        matched = 0
        for digest, upto in zip(hashes, totals, strict=True):
            if upto >= MIN_CACHED_PREFIX and digest in self._seen:
                matched = upto
        self._remember([d for d, upto in zip(hashes, totals, strict=True)
                        if upto >= MIN_CACHED_PREFIX])
        cached = matched // CACHE_STEP * CACHE_STEP if matched >= MIN_CACHED_PREFIX else 0
        return PromptTokens(total=total, cached=cached)

    def explicit(self, segments: Sequence[Segment]) -> PromptTokens:
        """Anthropic ``cache_control``: the prefix up to the furthest breakpoint seen before
        is read; the rest up to the last breakpoint is written. Prefixes under 1024 tokens
        are not cached (the API ignores the breakpoint silently)."""
        hashes, totals = _prefix_hashes(segments)
        total = totals[-1] if totals else 0
        eligible = [
            (hashes[i], totals[i])
            for i, seg in enumerate(segments)
            if seg.breakpoint and totals[i] >= MIN_CACHED_PREFIX
        ]
        read = max((upto for digest, upto in eligible if digest in self._seen), default=0)
        last = eligible[-1][1] if eligible else 0
        self._remember([digest for digest, _ in eligible])
        return PromptTokens(total=total, cached=read, cache_write=max(0, last - read))
