"""What a cascade tier answered (:class:`Answer`) and the canonical form of a final answer,
so two models' answers can be compared for agreement. Pure string work: never raises on
any text, never calls a model. Calibrated on GSM8K, MATH and CRUXEval outputs of 15 models
(numbers with units, LaTeX, Python literals); a rule that merged two different right/wrong
answers there was dropped, which is why case and inner whitespace of strings are kept.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache
from typing import Any

from thrifty.routing.answer_math import math_canonical, number_text

_MAX_CHARS = 2000
"""Longer text is compared as plain text: literal parsing of megabytes is not worth it."""
_REL_TOL = 1e-6


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str
    """The raw JSON text the model produced (checks parse it)."""


@dataclass(frozen=True, slots=True)
class Answer:
    model: str
    """The public model name that produced it."""
    text: str
    """Message content; ``''`` when the model only called tools."""
    finish_reason: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[float, ...] | None = None
    """Token logprobs of the content, when the provider returned them."""

    @classmethod
    def from_completion(cls, model: str, body: Mapping[str, Any]) -> Answer:
        """Read an OpenAI ``chat.completion`` body (tolerant: a malformed body gives '')."""
        choices = body.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        choice = choice if isinstance(choice, dict) else {}
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        finish = choice.get("finish_reason")
        return cls(
            model=model,
            text=_content_text(message.get("content")),
            finish_reason=finish if isinstance(finish, str) else None,
            tool_calls=_tool_calls(message),
            logprobs=_logprobs(choice.get("logprobs")),
        )


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones, in order
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _tool_calls(message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    raw = message.get("tool_calls")
    calls = raw if isinstance(raw, list) else []
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls = [*calls, {"function": legacy}]
    out = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            args = fn.get("arguments")
            out.append(ToolCall(str(fn.get("name") or ""),
                                args if isinstance(args, str) else json.dumps(args)))
    return tuple(out)


def _logprobs(raw: Any) -> tuple[float, ...] | None:
    content = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(content, list) or not content:
        return None
    values = [t.get("logprob") for t in content if isinstance(t, dict)]
    floats = tuple(float(v) for v in values if isinstance(v, int | float))
    return floats or None


# ---------------------------------------------------------------- final answer extraction

_JSON_ANSWER = re.compile(r'"(?:final_)?answer"\s*:\s*')
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TAGGED = re.compile(r"\[ANSWER\](.*?)\[/ANSWER\]", re.S | re.I)
_HASHES = re.compile(r"^\s*####\s*(.+?)\s*$", re.M)
_SAYS = re.compile(
    r"(?:final answer|the answer)(?: to [^\n:]{0,60}?)?\s*(?:is|:|=)\s*:?\s*([^\n]+)"
    r"|^\W{0,4}answer\W{0,4}:\s*([^\n]+)", re.I | re.M)
_FENCE = re.compile(r"```[a-zA-Z]*\n(.*?)```", re.S)
_INLINE = re.compile(r"`([^`\n]+)`")
_LAST_NUMBER = re.compile(r"-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def final_answer(text: str, *, last_number: bool = True) -> str | None:
    """The final answer in a free-text reply, or None when nothing is recognisable.

    In order: a JSON ``"answer"`` field, the last ``\\boxed{...}``, ``[ANSWER]...``,
    ``#### X``, 'The (final) answer is X' / 'Answer: X', a fenced or inline Python
    literal (code-output questions), then (unless ``last_number=False``: only explicit
    markers) the last number in the text.
    """
    if not text or not text.strip():
        return None
    text = text[-20_000:]  # the answer is at the end; bound the regex work
    extractors = _EXTRACTORS if last_number else _EXTRACTORS[:-1]
    for extract in extractors:
        found = extract(text)
        if found is not None and found.strip():
            return found.strip()
    return None


def _json_field(text: str) -> str | None:
    matches = list(_JSON_ANSWER.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end():]
    try:
        value, _ = json.JSONDecoder().raw_decode(rest)
    except ValueError:  # invalid JSON (an unescaped quote): take the line up to the close
        line = rest.split("\n", 1)[0].rstrip().rstrip("}").rstrip().rstrip(",")
        return line[1:-1] if len(line) >= 2 and line[0] == line[-1] == '"' else line or None
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _boxed(text: str) -> str | None:
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return None


def _tagged(text: str) -> str | None:
    found = _TAGGED.findall(text)
    return found[-1] if found else None


def _hashes(text: str) -> str | None:
    found = _HASHES.findall(text)
    return found[-1] if found else None


def _says(text: str) -> str | None:
    found = _SAYS.findall(text)
    if not found:
        return None
    value: str = (found[-1][0] or found[-1][1]).strip()
    inner = _SAYS.findall(value)  # "Final Answer: The final answer is 5."
    if inner:
        value = (inner[-1][0] or inner[-1][1]).strip()
    value = value.strip("*").strip()
    if value.startswith("$") and value.find("$", 1) > 0:  # "$\\frac12$. I hope it is correct."
        return value[:value.find("$", 1) + 1]
    if value[:1] not in ("'", '"'):
        value = value.split(". ", 1)[0].removesuffix(".")
    return value.strip("*").strip()


def _code_literal(text: str) -> str | None:
    for pattern in (_FENCE, _INLINE):
        for block in reversed(pattern.findall(text)):
            candidate = str(block).strip()
            if candidate.startswith("assert ") and "==" in candidate:
                candidate = candidate.rsplit("==", 1)[1].strip()
            if candidate and "\n" not in candidate and _literal(candidate) is not None:
                return candidate
    return None


def _last_number(text: str) -> str | None:
    found = _LAST_NUMBER.findall(text)
    return found[-1] if found else None


_EXTRACTORS = (_json_field, _boxed, _tagged, _hashes, _says, _code_literal, _last_number)


# ---------------------------------------------------------------- canonical form

_ASSERT = re.compile(r"^assert\s.+?==\s*(.+)$", re.S)
_LHS = re.compile(r"^[a-zA-Z](?:_\w+)?\s*=\s*(?!=)(.+)$", re.S)
_WRAPS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"))
_KEYWORDS = {
    "true": "True", "false": "False", "none": "None", "null": "None", "yes": "yes",
    "no": "no", "infinity": "inf", "inf": "inf", "∞": "inf", "\\infty": "inf",
    "undefined": "undefined", "no solution": "no solution",
}


@lru_cache(maxsize=8192)
def canonical(answer: str) -> str:
    """A form in which equal answers are equal strings; ``''`` for no answer.

    Numbers lose thousands commas, currency, percent, degrees, units and trailing zeros
    (``$1,050.00`` -> ``1050``); exact fractions reduce (``\\frac{2}{6}`` -> ``1/3``, and
    ``\\frac{6}{4}`` -> ``1.5`` when the decimal terminates); LaTeX loses spacing,
    ``\\left``/``\\right`` and wrappers (``$..$``, ``\\boxed{}``, ``x =``); arithmetic over
    numbers, ``sqrt`` and ``pi`` is evaluated (``~`` marks an inexact value); tuples and
    intervals go element by element; Python literals become their repr with dict and set
    items sorted; a quoted string is its content (``'abc'`` equals ``abc``, but ``'20'`` is
    not ``20``), with newlines spelled ``\\n``. Case and spacing inside strings are kept.
    """
    text = answer.strip()
    if not text:
        return ""
    if len(text) > _MAX_CHARS:
        return " ".join(text.split())
    text = _unwrap(text)
    return _canonical(text) if text.strip("$") else ""


def _canonical(text: str) -> str:
    number = number_text(text)
    if number is not None:
        return number
    literal = _literal(text)
    if isinstance(literal, str):
        return _quoted(literal)
    if literal is not None:
        return _repr(literal)
    if text[0] in "'\"" or text[-1] in "'\"":
        # A broken literal ('abc'' or abc'): the content, with its raw newlines kept raw,
        # since a real newline inside quotes is not the escaped one the program printed.
        return text.strip("'\"")
    keyword = _KEYWORDS.get(text.lower())
    if keyword is not None:
        return keyword
    mathy = math_canonical(text)
    return mathy if mathy is not None else _escaped(text)


def _quoted(content: str) -> str:
    """A string literal's content, which equals the same text unquoted (models drop the
    quotes of string output), except that a string of digits stays a string: ``'20'`` is
    not ``20``. A bare tuple or bool inside quotes is read as one (``'1,2'`` is ``1,2``), a
    bracketed list is not. Case and spacing matter in program output, so they are kept."""
    if not content:
        return "''"
    plain = content == content.strip() and content[0] not in "[{(\"'"
    inner = _literal(content) if plain else None
    if isinstance(inner, int | float) and not isinstance(inner, bool):
        return repr(content)
    if inner is not None and not isinstance(inner, str):
        return _repr(inner)
    return _escaped(content)


def _escaped(text: str) -> str:
    """Newlines and tabs spelled as escapes: a literal's real newline, the model's
    unquoted ``a\\nb`` and a raw multi-line answer all mean the same printed string."""
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def agree(a: str, b: str) -> bool:
    """Whether two final answers are the same: canonical equality, or, when either is an
    inexact number (a fraction like ``1/3``, an irrational like ``2\\sqrt{3}``), equal
    values within a relative 1e-6. Decimals as written compare exactly (``812345.67`` is not
    ``812346``), and an empty answer agrees with nothing."""
    ca, cb = canonical(a), canonical(b)
    if not ca or not cb:
        return False
    if ca == cb:
        return True
    if not ("/" in ca or "/" in cb or ca[0] == "~" or cb[0] == "~"):
        return False
    va, vb = _numeric(ca.lstrip("~")), _numeric(cb.lstrip("~"))
    if va is None or vb is None:
        return False
    return math.isclose(va, vb, rel_tol=_REL_TOL)


_NUMERIC = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:/[1-9]\d*)?$|^-?\d(?:\.\d+)?e[-+]\d+$")


def _numeric(text: str) -> float | None:
    """The value of a canonical number (``12``, ``-0.5``, ``7/3``, ``1.5e+20``)."""
    if len(text) > 400 or not _NUMERIC.match(text):
        return None
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _unwrap(text: str) -> str:
    """Peel what surrounds a value: $...$, \\boxed{}, **bold**, 'assert f(x) == V', 'x = V'."""
    for _ in range(4):
        before = text
        for left, right in _WRAPS:
            if len(text) > len(left) + len(right) and text.startswith(left) \
                    and text.endswith(right):
                text = text[len(left):-len(right)].strip()
        boxed = _boxed(text) if text.startswith(("\\boxed", "\\fbox")) else None
        if boxed is not None and text.endswith("}"):
            text = boxed.strip()
        for pattern in (_ASSERT, _LHS):
            match = pattern.match(text)
            if match:
                text = match.group(1).strip()
        if text == before:
            break
    return text


def _literal(text: str) -> object | None:
    """A Python literal the text spells, or None (not every string: ``abc`` is not one)."""
    if text[0] not in "'\"[({-+.0123456789bBuUrR" and text not in ("True", "False", "None"):
        return None
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" is the model's, not ours
            warnings.simplefilter("ignore")
            value: object = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value


def _repr(value: object) -> str:
    """repr with numbers canonical and unordered containers sorted."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, tuple):
        inner = ", ".join(_repr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_repr(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(f"{_repr(k)}: {_repr(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(_repr(v) for v in value)) + "}" if value else "set()"
    return repr(value)


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    try:
        exact = Decimal(repr(value)).normalize()
    except InvalidOperation:  # pragma: no cover - repr of a finite float always parses
        return repr(value)
    return format(exact, "f") if abs(exact.adjusted()) < 30 else repr(value)
