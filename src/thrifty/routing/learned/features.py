"""Cheap lexical features of a prompt: length, digits, code and math markers, question and
instruction words. Pure, deterministic and dependency-free beyond numpy, so a router trained
with ``--features lexical`` runs on any install. Must not import the embedding model."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

FeatureKind = Literal["lexical", "embedding", "both"]
FEATURE_KINDS: tuple[FeatureKind, ...] = ("lexical", "embedding", "both")

Vector = npt.NDArray[np.float64]

_WORD = re.compile(r"[a-z0-9_']+")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")



def _vocab(words: str) -> frozenset[str]:
    return frozenset(words.split())


_QUESTION_WORDS = _vocab(
    "what why how who when where which whom whose explain describe is are can could does do "
    "should would will")
_INSTRUCTION_WORDS = _vocab(
    "write create generate list give make compose draft design suggest provide rewrite "
    "summarize summarise translate implement build plan outline")
_CREATIVE_WORDS = _vocab(
    "story poem essay song lyrics joke letter email blog script tweet slogan haiku speech "
    "dialogue novel character")
_REASONING_WORDS = _vocab(
    "prove why compare analyze analyse evaluate step reason tradeoff tradeoffs pros cons "
    "difference differences optimal")
_CONSTRAINT_WORDS = _vocab(
    "must exactly least most words sentences format json table bullet only without")
# task kinds: rewriting a given text vs open-ended explanation vs a short closed answer
_TRANSFORM_WORDS = _vocab(
    "rewrite translate summarize summarise classify extract convert correct paraphrase fix "
    "edit format rephrase shorten simplify categorize categorise sort identify")
_OPEN_WORDS = _vocab(
    "explain describe discuss why how elaborate detail details compare analyze analyse advice "
    "recommend tips")
_SHORT_ANSWER_WORDS = _vocab("name which yes no true false one word choose select answer")
_LIST_WORDS = _vocab("list examples ideas suggestions steps ways")
_CODE_MARKERS = ("```", "def ", "return", "import ", "function", "class ", "{", "}", ";",
                 "()", "=>", "print(", "assert", "python", "javascript", "sql", "c++", "java")
_MATH_MARKERS = ("$", "\\frac", "^", "sqrt", "equation", "solve", "calculate", "integer",
                 "probability", "=", "+", "*", "%", "\\", "how many", "how much")

LEXICAL_NAMES: tuple[str, ...] = (
    "log_chars", "log_words", "log_lines", "log_sentences", "log_numbers",
    "digit_share", "upper_share", "symbol_share", "mean_word_len", "distinct_word_share",
    "has_question_mark", "starts_with_question", "question_word_share",
    "starts_with_instruction", "instruction_word_share", "creative_word_share",
    "reasoning_word_share", "constraint_word_share", "code_marker_rate", "math_marker_rate",
    "has_code_fence", "has_latex", "newline_rate", "has_digit",
    "transform_word_share", "starts_with_transform", "open_word_share", "starts_with_open",
    "short_answer_word_share", "list_word_share", "has_colon", "has_quote",
)


def lexical_features(prompt: str) -> Vector:
    """The ``LEXICAL_NAMES`` features of one prompt, in that order (raw, not standardised)."""
    lower = prompt.lower()
    words = _WORD.findall(lower)
    n_words = max(len(words), 1)
    n_chars = max(len(prompt), 1)
    per_100 = 1.0 + len(prompt) / 100.0  # marker counts per 100 characters, damped for short
    first = words[0] if words else ""

    def share(vocab: frozenset[str]) -> float:
        return sum(w in vocab for w in words) / n_words

    values = (
        math.log1p(len(prompt)),
        math.log1p(len(words)),
        math.log1p(prompt.count("\n")),
        math.log1p(len(_SENTENCE_END.findall(prompt))),
        math.log1p(len(_NUMBER.findall(prompt))),
        sum(ch.isdigit() for ch in prompt) / n_chars,
        sum(ch.isupper() for ch in prompt) / n_chars,
        sum(not ch.isalnum() and not ch.isspace() for ch in prompt) / n_chars,
        sum(len(w) for w in words) / n_words,
        len(set(words)) / n_words,
        float("?" in prompt),
        float(first in _QUESTION_WORDS),
        share(_QUESTION_WORDS),
        float(first in _INSTRUCTION_WORDS),
        share(_INSTRUCTION_WORDS),
        share(_CREATIVE_WORDS),
        share(_REASONING_WORDS),
        share(_CONSTRAINT_WORDS),
        sum(lower.count(m) for m in _CODE_MARKERS) / per_100,
        sum(lower.count(m) for m in _MATH_MARKERS) / per_100,
        float("```" in prompt),
        float("\\(" in prompt or "$" in prompt or "\\frac" in prompt),
        prompt.count("\n") / per_100,
        float(any(ch.isdigit() for ch in prompt)),
        share(_TRANSFORM_WORDS),
        float(first in _TRANSFORM_WORDS),
        share(_OPEN_WORDS),
        float(first in _OPEN_WORDS),
        share(_SHORT_ANSWER_WORDS),
        share(_LIST_WORDS),
        float(":" in prompt),
        float('"' in prompt or "'" in prompt),
    )
    return np.asarray(values, dtype=np.float64)


def lexical_matrix(prompts: Sequence[str]) -> npt.NDArray[np.float64]:
    """``lexical_features`` for many prompts, one row each."""
    if not prompts:
        return np.zeros((0, len(LEXICAL_NAMES)), dtype=np.float64)
    return np.vstack([lexical_features(p) for p in prompts])


def blocks_for(kind: FeatureKind) -> tuple[str, ...]:
    """The feature blocks a kind is made of; ``both`` is an ensemble of the two blocks, each
    with its own predictor, rather than one wide block (it cross-validated better)."""
    if kind == "lexical":
        return ("lexical",)
    if kind == "embedding":
        return ("embedding",)
    return ("lexical", "embedding")
