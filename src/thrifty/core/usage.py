"""Token usage as providers report it, normalised to one shape.

Conventions (OpenAI's): ``input_tokens`` counts every prompt token, including the ones read
from or written to a prompt cache; ``output_tokens`` counts every generated token, including
reasoning/thinking tokens. The cached / cache-write / reasoning fields are the subsets that are
priced differently. Adapters convert vendor conventions (Anthropic reports cache tokens outside
``input_tokens``; Gemini reports thinking outside ``candidatesTokenCount``) into this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``usage`` object, with the detail blocks the SDK understands."""
        out: dict[str, Any] = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }
        if self.cache_write_tokens:
            out["prompt_tokens_details"]["cache_write_tokens"] = self.cache_write_tokens
        return out


NO_USAGE = Usage()
"""Zero of everything: what a call without reported usage adds (frozen, so shared)."""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def usage_from_openai(obj: Any) -> Usage | None:
    """Read an OpenAI-shaped ``usage`` object (tolerant of vendors that omit the details)."""
    if not isinstance(obj, dict):
        return None
    prompt = obj.get("prompt_tokens_details")
    completion = obj.get("completion_tokens_details")
    cached = cache_write = reasoning = 0
    if isinstance(prompt, dict):  # absent from many vendors' usage: skip the lookups
        cached = _int(prompt.get("cached_tokens"))
        cache_write = _int(prompt.get("cache_write_tokens"))
    if isinstance(completion, dict):
        reasoning = _int(completion.get("reasoning_tokens"))
    # DeepSeek reports cache hits in prompt_cache_hit_tokens instead of the details block.
    return Usage(_int(obj.get("prompt_tokens")), _int(obj.get("completion_tokens")),
                 cached or _int(obj.get("prompt_cache_hit_tokens")), cache_write, reasoning)
