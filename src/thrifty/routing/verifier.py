"""The verifier check's pure half: the prompt a verifier model is asked, reading a score out
of its reply, the pass rule, and calibrating the threshold offline to a target precision.
The cascade executor makes the call; nothing here talks to a model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_SYSTEM = (
    "You check answers. Judge whether the answer to the question is correct and complete. "
    "Reply with one line, 'Score: X', where X is your probability (0 to 1) that it is."
)
DEFAULT_TEMPLATE = (
    "Question:\n{question}\n\nAnswer:\n{answer}\n\n"
    "Is this answer correct and complete? Reply 'Score: X' with X from 0 to 1."
)

_PLACEHOLDER = re.compile(r"\{(question|answer)\}")
_NUM = r"(\d+(?:\.\d+)?|\.\d+)"
_SCORE = re.compile(
    rf"score[\s:=*]{{0,4}}(?:is\s+)?[\s:=*]*(-?){_NUM}\s*(?:(/|out of)\s*{_NUM}|(%))?", re.I)
_RATIO = re.compile(rf"{_NUM}\s*(?:/|out of)\s*{_NUM}", re.I)
_PERCENT = re.compile(rf"{_NUM}\s*%")
_BARE = re.compile(rf"^\W*{_NUM}\W*$")
_YES = re.compile(r"^\W*(yes|correct|true|right)\b", re.I)
_NO = re.compile(r"^\W*(no|incorrect|false|wrong|not correct)\b", re.I)


def verifier_question(request_body: Mapping[str, Any]) -> str:
    """The text of the request's last user message (its text parts joined): the question
    the verifier is shown."""
    messages = request_body.get("messages")
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(p["text"] for p in content
                                 if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def verifier_prompt(question: str, answer: str, *, template: str = DEFAULT_TEMPLATE,
                    system: str | None = DEFAULT_SYSTEM) -> list[dict[str, str]]:
    """Chat messages asking a verifier to score ``answer``. ``{question}`` and ``{answer}``
    in the template are filled in one pass, so braces inside them are left alone."""
    values = {"question": question, "answer": answer}
    user = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": user}]


def parse_verifier_score(text: str) -> float | None:
    """A score in [0, 1] from a verifier's reply, or None when it has none.

    Accepts 'Score: 0.8', 'Score: 8/10', 'score = 80%', '8 out of 10', a lone number, and a
    leading yes/no. A number without a scale is read as a probability when <= 1, out of 10
    when <= 10 and out of 100 when <= 100.
    """
    text = text.strip()[:2000]
    found = list(_SCORE.finditer(text))
    if found:
        m = found[-1]
        if m.group(1):  # a negative score is as bad as the scale goes
            return 0.0
        den = m.group(4) or ("100" if m.group(5) else None)
        return _scaled(m.group(2), den)
    ratio = _RATIO.search(text)
    if ratio:
        return _scaled(ratio.group(1), ratio.group(2))
    percent = _PERCENT.search(text)
    if percent:
        return _scaled(percent.group(1), "100")
    if _YES.match(text):
        return 1.0
    if _NO.match(text):
        return 0.0
    bare = _BARE.match(text)
    return _scaled(bare.group(1), None) if bare else None


def _scaled(num: str, den: str | None) -> float | None:
    value = float(num)
    if den is not None:
        scale = float(den)
        return min(1.0, value / scale) if scale > 0 else None
    for scale in (1.0, 10.0, 100.0):
        if value <= scale:
            return value / scale
    return None


def verifier_passes(score: float | None, threshold: float) -> bool:
    """A missing score fails: an unreadable verifier is no evidence the answer is right."""
    return score is not None and score >= threshold


def calibrate_verifier_threshold(scores: Sequence[float], labels: Sequence[bool],
                                 target_precision: float) -> float:
    """The lowest threshold whose accepted answers (score >= threshold) are correct at
    least ``target_precision`` of the time on this labelled sample, so the cascade accepts
    as many cheap answers as that precision allows. ``math.inf`` (accept nothing) when no
    threshold reaches it."""
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    best = math.inf
    correct = 0
    ranked = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    for accepted, (score, label) in enumerate(ranked, start=1):
        correct += bool(label)
        boundary = accepted == len(ranked) or ranked[accepted][0] != score
        if boundary and correct >= target_precision * accepted - 1e-9:  # float slack
            best = score
    return best
