"""Lexical features: deterministic, named, and moving the way their names say."""

from __future__ import annotations

import numpy as np

from thrifty.routing.learned.embedder import HashingEmbedder
from thrifty.routing.learned.features import (
    LEXICAL_NAMES,
    blocks_for,
    lexical_features,
    lexical_matrix,
)

CODE = "```python\ndef f(x):\n    return x + 1\n```\nWhat does f(2) return?"
MATH = "Solve for $x$: $\\frac{x^2 + 3}{2} = 14$. How many integer solutions are there?"
CHAT = "Write a short poem about autumn leaves"


def feature(prompt: str, name: str) -> float:
    return float(lexical_features(prompt)[LEXICAL_NAMES.index(name)])


def test_features_are_deterministic_and_named() -> None:
    a, b = lexical_features(CODE), lexical_features(CODE)
    assert a.shape == (len(LEXICAL_NAMES),)
    assert np.array_equal(a, b)
    assert np.isfinite(a).all()
    assert len(set(LEXICAL_NAMES)) == len(LEXICAL_NAMES)


def test_empty_prompt_is_finite_zero_length() -> None:
    v = lexical_features("")
    assert np.isfinite(v).all()
    assert feature("", "log_chars") == 0.0


def test_markers_follow_the_prompt_kind() -> None:
    assert feature(CODE, "code_marker_rate") > feature(CHAT, "code_marker_rate")
    assert feature(CODE, "has_code_fence") == 1.0 and feature(CHAT, "has_code_fence") == 0.0
    assert feature(MATH, "math_marker_rate") > feature(CHAT, "math_marker_rate")
    assert feature(MATH, "has_latex") == 1.0 and feature(CHAT, "has_latex") == 0.0
    assert feature(CHAT, "starts_with_instruction") == 1.0
    assert feature(CHAT, "creative_word_share") > 0.0
    assert feature(MATH, "has_question_mark") == 1.0
    assert feature("Why is the sky blue?", "starts_with_question") == 1.0
    assert feature("abc 123 4567", "digit_share") > feature("abc def ghij", "digit_share")
    assert feature(CHAT * 10, "log_chars") > feature(CHAT, "log_chars")


def test_matrix_stacks_rows_in_order() -> None:
    m = lexical_matrix([CODE, MATH])
    assert m.shape == (2, len(LEXICAL_NAMES))
    assert np.array_equal(m[1], lexical_features(MATH))
    assert lexical_matrix([]).shape == (0, len(LEXICAL_NAMES))


def test_blocks_per_kind() -> None:
    assert blocks_for("lexical") == ("lexical",)
    assert blocks_for("embedding") == ("embedding",)
    assert blocks_for("both") == ("lexical", "embedding")


def test_hashing_embedder_is_deterministic_unit_length() -> None:
    emb = HashingEmbedder(dim=32)
    a = emb.embed([CODE, CHAT])
    assert a.shape == (2, 32)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert np.array_equal(a, emb.embed([CODE, CHAT]))
    assert emb.embed([""]).sum() == 0.0
    assert emb.name == "hashing-32"
