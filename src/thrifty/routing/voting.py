"""Which answers agree, for the agreement check: exact (canonical final answers, parsed JSON,
tool calls) or semantic (embedding or lexical similarity of free text). Pure: the
embedder is passed in and is the only thing that may compute anything heavy.

The lexical default is a cosine over the sets of words and character trigrams, a stand-in
for an embedder that notices shared content but not paraphrase; tune ``threshold`` to it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol, TypeVar

import orjson

from thrifty.routing.answer import Answer, agree, final_answer

VoteMode = Literal["exact", "semantic", "auto"]
T = TypeVar("T")
_WORD = re.compile(r"\w+")
_LEXICAL_CHARS = 4000
"""Free text beyond this is not compared: the opening says what the answer is."""


class Embedder(Protocol):
    """Sentence embeddings for semantic agreement, e.g. a local sentence-transformers model.

    Example::

        class MyEmbedder:
            def embed(self, texts):
                return model.encode(list(texts)).tolist()
    """

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass(frozen=True, slots=True)
class VoteResult:
    members: tuple[int, ...]
    """Indices of the largest group of agreeing answers, ascending; () when none could vote."""
    mode: str
    """The comparison used: ``exact``, ``structured`` or ``semantic``."""
    summary: str
    """What the group agreed on, shortened for a log line."""


def vote(answers: Sequence[Answer], request: Mapping[str, Any], *, mode: VoteMode = "auto",
         threshold: float = 0.8, short_chars: int = 40,
         embedder: Embedder | None = None) -> VoteResult:
    """Group the answers by agreement and return the largest group (ties go to the group
    holding the latest answer, from the strongest tier)."""
    structured = _structured_keys(answers, request)
    if structured is not None:
        groups = _groups(structured, lambda a, b: a == b)
        return _result(groups, "structured", structured)
    if mode == "exact" or (mode == "auto" and all(_is_short(a.text, short_chars)
                                                  for a in answers)):
        finals = [_final(a.text, short_chars) for a in answers]
        return _result(_groups(finals, agree), "exact", finals)
    texts = [a.text.strip()[:_LEXICAL_CHARS] or None for a in answers]
    similar = _similarity(texts, embedder)
    voters = [i if t else None for i, t in enumerate(texts)]
    groups = _groups(voters, lambda i, j: similar(i, j) >= threshold)
    return _result(groups, "semantic", texts)


def lexical_similarity(a: str, b: str) -> float:
    """Cosine of the two texts' word and character-trigram sets, in [0, 1]."""
    fa, fb = _features(a[:_LEXICAL_CHARS]), _features(b[:_LEXICAL_CHARS])
    if not fa or not fb:
        return 0.0
    return len(fa & fb) / math.sqrt(len(fa) * len(fb))


@lru_cache(maxsize=1024)
def _features(text: str) -> frozenset[str]:
    words = _WORD.findall(text.lower())
    grams = {f"#{w}#"[i:i + 3] for w in words for i in range(len(w))}
    return frozenset(words) | frozenset(grams)


def _similarity(texts: list[str | None], embedder: Embedder | None,
                ) -> Callable[[int, int], float]:
    if embedder is None:
        return lambda i, j: lexical_similarity(texts[i] or "", texts[j] or "")
    vectors = embedder.embed([t or "" for t in texts])
    return lambda i, j: _cosine(vectors[i], vectors[j])


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _is_short(text: str, short_chars: int) -> bool:
    marked = final_answer(text, last_number=False)
    return len(marked if marked is not None else text.strip()) < short_chars


def _final(text: str, short_chars: int) -> str | None:
    """The explicit final answer, else a short reply itself, else the last number."""
    marked = final_answer(text, last_number=False)
    if marked is not None:
        return marked
    stripped = text.strip()
    return stripped if 0 < len(stripped) < short_chars else final_answer(stripped)


def _structured_keys(answers: Sequence[Answer],
                     request: Mapping[str, Any]) -> list[str | None] | None:
    """Comparable keys when the answers are structured (JSON mode, or tool calls)."""
    fmt = request.get("response_format")
    json_mode = isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema")
    if not json_mode and not any(a.tool_calls for a in answers):
        return None
    keys: list[str | None] = []
    for a in answers:
        if a.tool_calls:
            calls = sorted((c.name, _json_key(c.arguments) or c.arguments) for c in a.tool_calls)
            keys.append("tools:" + orjson.dumps(calls).decode())
        elif json_mode:
            keys.append(_json_key(a.text))
        else:
            keys.append("text:" + " ".join(a.text.split()) if a.text.strip() else None)
    return keys


def _json_key(text: str) -> str | None:
    try:
        value = orjson.loads(text.strip() or "null")
    except orjson.JSONDecodeError:
        return None
    return None if value is None else orjson.dumps(_plain_numbers(value),
                                                   option=orjson.OPT_SORT_KEYS).decode()


def _plain_numbers(value: Any) -> Any:
    """1.0 and 1 are the same JSON number."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    return value


def _groups(keys: Sequence[T | None], same: Callable[[T, T], bool]) -> list[list[int]]:
    """Greedy grouping: each answer joins the first group whose first member it agrees
    with. Answers without a key (nothing recognisable) vote for nothing."""
    groups: list[list[int]] = []
    for i, key in enumerate(keys):
        if key is None:
            continue
        for group in groups:
            first = keys[group[0]]
            if first is not None and same(first, key):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def _result(groups: list[list[int]], mode: str, shown: Sequence[object]) -> VoteResult:
    if not groups:
        return VoteResult((), mode, "no answer could vote")
    best = max(groups, key=lambda g: (len(g), g[-1]))
    text = str(shown[best[-1]])
    return VoteResult(tuple(best), mode, repr(text if len(text) <= 60 else text[:57] + "..."))
