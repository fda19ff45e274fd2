"""Canonical forms of numeric and LaTeX answers, for ``routing.answer``: plain numbers with
their decorations (currency, commas, percent, degrees, units), and math expressions
(``\\frac``, ``\\sqrt``, powers, intervals) evaluated exactly where they are numeric.
Pure string work; never raises, never evaluates anything but arithmetic on numbers.
"""

from __future__ import annotations

import ast
import math
import re
from decimal import Decimal, localcontext
from fractions import Fraction

Value = Fraction | float

_NUMBER = re.compile(
    r"^(?P<sign>[-+−]?)\s*(?:\\?\$|[€£¥]|USD\s)?\s*(?P<sign2>[-+]?)"
    r"(?P<num>(?:0|[1-9]\d{0,2}(?:,\d{3})+|[1-9]\d*)(?:\.\d+)?|0?\.\d+)"
    r"(?P<gap>\s*)(?P<tail>.*?)\.?$", re.S)
_DEGREE = re.compile(r"^(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree|degrees?)"
                     r"\s*(?:[CF]|Celsius|Fahrenheit)?$")
_LATEX_UNIT = re.compile(r"^\\(?:text|mbox|mathrm|textrm)\s*\{\s*([a-zA-Z][a-zA-Z ./]*)\}"
                         r"(?:\^\{?\d\}?|²|³)?$")
_UNIT_WORD = r"(?:[A-Z]?[a-z]+|[A-Z]{1,4}|mL|kB|kW|kWh|mph|Mbps)"
_WORD_UNIT = re.compile(
    rf"^({_UNIT_WORD})(?:\s*(?:/|\sper\s)?\s*{_UNIT_WORD}){{0,3}}(?:\^\d|²|³)?$")
_ONE_LETTER_UNITS = frozenset("gmslLhK")
_ATTACHED = re.compile(r"^(?:[a-z]{1,3}|mL|kB|kW|kWh|mph|[KMGT]B)(?:\^\d|²|³)?$")
"""Units written against the number (``2600g``, ``5cm``): short, so ``7Ab-Cde`` is not."""
_LATEX_CMD = re.compile(
    r"\\(?:[dt]?frac|sqrt|left|right|cdot|times|pi|infty|text\w*|math\w+|mbox|circ|pm|mp|div"
    r"|le|ge|leq|geq|neq|cup|cap|emptyset|varnothing|displaystyle|[{},!;:% $])")
_PLAIN_MATH = re.compile(r"^[\w\s+\-*/(){}.\[\],^=√π]*$")
_OPERATOR = re.compile(r"[+\-*/^=√π]")
_SUBS = (
    (re.compile(r"\\left|\\right|\\displaystyle|\\[,!;: ]|~"), ""),
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree"), ""),
    (re.compile(r"\\?%|\\\$|\$"), ""),
    (re.compile(r"\\cdot|\\times|×|·"), "*"),
    (re.compile(r"\\div|÷"), "/"),
    (re.compile(r"\\pi|π"), "pi"),
    (re.compile(r"\\infty|∞"), "inf"),
    (re.compile(r"\\(?:text\w*|math\w+|mbox|operatorname)\s*\{"), "{"),
    (re.compile(r"√\s*(\d+(?:\.\d+)?|[a-zA-Z])"), r"sqrt(\1)"),
    (re.compile(r"√"), "sqrt"),
)
_FUNCTIONS = frozenset({"sqrt", "pi", "inf", "log", "ln", "sin", "cos", "tan", "exp", "mod"})
_SINGLE_POWER = re.compile(r"\^\((\w)\)")
_TOKEN = re.compile(r"\s*(\d+\.\d*|\.\d+|\d+|[a-zA-Z]+|\*\*|[-+*/^()])")
_MAX_BITS = 10_000
"""Exact integers beyond this are not worth it (and str() of them is limited)."""


def number_text(text: str) -> str | None:
    """The canonical number when the text is one number with decorations, else None."""
    match = _NUMBER.match(text)
    if match is None:
        return None
    tail = match["tail"]
    attached = not match["gap"] and tail[:1].isalpha()
    if not _is_decoration(tail.strip()) or (attached and not _ATTACHED.match(tail)):
        return None
    negative = (match["sign"] in ("-", "−")) != (match["sign2"] == "-")  # "-$5" or "$-5"
    value = Fraction(match["num"].replace(",", ""))
    return format_value(-value if negative else value)


def _is_decoration(tail: str) -> bool:
    if tail in ("", "%", "\\%", "percent") or _DEGREE.match(tail) or _LATEX_UNIT.match(tail):
        return True
    unit = _WORD_UNIT.match(tail)
    if unit is None or len(tail) > 30:
        return False
    first = unit.group(1)
    # A lone letter after a number is more often a variable or program output ("3 x y")
    # than a unit, so only the common one-letter units count.
    return len(first) >= 2 or first in _ONE_LETTER_UNITS


def format_value(value: Value) -> str:
    """Integers as integers, terminating fractions as decimals, others as ``n/d``;
    inexact (irrational) values as ``~`` and 12 significant digits, so that agreement
    knows to compare them with a tolerance."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return "~" + format(value, ".12g")
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos_fives = den
    for p in (2, 5):
        while twos_fives % p == 0:
            twos_fives //= p
    if twos_fives == 1 and den.bit_length() < 160:
        with localcontext() as ctx:
            ctx.prec = 80
            exact = (Decimal(value.numerator) / Decimal(den)).normalize()
        return format(exact, "f")
    return f"{value.numerator}/{den}"


def math_canonical(text: str) -> str | None:
    """The canonical form of a LaTeX or arithmetic answer, or None when the text does not
    look like math (then it is compared as plain text, spaces and case kept)."""
    if not _LATEX_CMD.search(text) and not _plain_math(text):
        return None
    expr = _normalise(text)
    # A chain of working (``2 + 8 + 6 = 16``) or an equation answers with its last side.
    expr = re.split(r"(?<![<>!=])=(?!=)", expr)[-1]
    if not expr:
        return None
    return _sequence(expr) or _atom(expr)


def _plain_math(text: str) -> bool:
    """Arithmetic or an interval without LaTeX: operators, numbers, and only short names
    (variables, ``sqrt``, ``pi``); ``Ann*Lee`` is program output, not a product."""
    if not _PLAIN_MATH.match(text):
        return False
    interval = text[0] in "([" and text[-1] in ")]" and "," in text
    if not interval and not _OPERATOR.search(text):
        return False
    return all(len(w) <= 2 or w in _FUNCTIONS for w in re.findall(r"[a-zA-Z]+", text))


def _normalise(text: str) -> str:
    for pattern, repl in _SUBS:
        text = pattern.sub(repl, text)
    text = _rewrite_frac_sqrt(text)
    text = text.replace("{", "(").replace("}", ")")
    return "".join(text.split())


def _atom(expr: str) -> str:
    number = number_text(expr)
    if number is not None:
        return number
    if expr in ("inf", "+inf", "-inf"):
        return expr.lstrip("+")
    value = evaluate(expr)
    if value is not None:
        return format_value(value)
    # Symbolic: explicit and implicit products are the same product, x^(2) is x^2.
    return _SINGLE_POWER.sub(r"^\1", expr.replace("*", "").replace("()", ""))


def _sequence(expr: str) -> str | None:
    """Tuples, intervals and lists of answers, element by element: ``(0.5, \\infty]``."""
    if len(expr) < 3 or expr[0] not in "([" or expr[-1] not in ")]":
        return None
    parts = _split_top(expr[1:-1])
    if parts is None or len(parts) < 2:
        return None
    return expr[0] + ", ".join(_atom(p) for p in parts) + expr[-1]


def _split_top(body: str) -> list[str] | None:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                return None
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return parts if all(parts) else None


def _group(text: str, i: int) -> tuple[str, int] | None:
    """The brace group or single character starting at ``text[i]`` and the index after."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":
        return text[i], i + 1
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j], j + 1
    return None


def _rewrite_frac_sqrt(text: str) -> str:
    """``\\frac{a}{b}`` -> ``((a)/(b))``, ``\\sqrt[n]{x}`` -> ``((x)^(1/(n)))``,
    ``\\sqrt{x}`` -> ``sqrt(x)``, innermost first so nesting works."""
    for _ in range(50):  # bounded: each pass removes one command
        at = max(text.rfind("\\frac"), text.rfind("\\sqrt"))
        if at < 0:
            return text
        if text.startswith("\\frac", at):
            num = _group(text, at + 5)
            den = _group(text, num[1]) if num else None
            if num is None or den is None:
                return text
            text = f"{text[:at]}(({_rewrite_frac_sqrt(num[0])})/" \
                   f"({_rewrite_frac_sqrt(den[0])})){text[den[1]:]}"
            continue
        index, after = None, at + 5
        if after < len(text) and text[after] == "[" and "]" in text[after:]:
            close = text.index("]", after)
            index, after = text[after + 1:close], close + 1
        arg = _group(text, after)
        if arg is None:
            return text
        inner = _rewrite_frac_sqrt(arg[0])
        core = f"sqrt({inner})" if index is None else f"(({inner})^(1/({index})))"
        text = f"{text[:at]}{core}{text[arg[1]:]}"
    return text


# ---------------------------------------------------------------- arithmetic evaluation

class _NotNumeric(Exception):
    """The expression has a variable, a non-real or a too-large value."""


def evaluate(expr: str) -> Value | None:
    """The value of arithmetic over numbers, ``sqrt`` and ``pi`` (implicit products
    allowed: ``2sqrt(3)``); exact where possible; None for anything else."""
    python = _to_python(expr)
    if python is None:
        return None
    try:
        tree = ast.parse(python, mode="eval")
        return _eval(tree.body)
    except (_NotNumeric, SyntaxError, ValueError, ZeroDivisionError, OverflowError,
            RecursionError, MemoryError):
        return None


def _to_python(expr: str) -> str | None:
    out: list[str] = []
    pos, prev = 0, ""
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            return None
        tok, pos = match.group(1), match.end()
        if tok.isalpha() and tok not in ("sqrt", "pi"):
            return None
        starts_operand = tok[0].isalnum() or tok[0] == "." or tok == "("
        ends_operand = prev[:1].isalnum() or prev[:1] == "." or prev == ")"
        if starts_operand and ends_operand and prev != "sqrt" and not (
                prev[0].isdigit() and tok[0].isdigit()):
            out.append("*")
        out.append("**" if tok == "^" else tok)
        prev = tok
    return "".join(out) if out else None


def _eval(node: ast.AST) -> Value:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(repr(node.value))
    if isinstance(node, ast.Name) and node.id == "pi":
        return math.pi
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "sqrt" and len(node.args) == 1 and not node.keywords:
        return _sqrt(_eval(node.args[0]))
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        if isinstance(node.op, ast.Pow):
            return _pow(left, right)
    raise _NotNumeric


def _sqrt(value: Value) -> Value:
    if value < 0:
        raise _NotNumeric
    if isinstance(value, Fraction):
        num, den = math.isqrt(value.numerator), math.isqrt(value.denominator)
        if num * num == value.numerator and den * den == value.denominator:
            return Fraction(num, den)
    return math.sqrt(value)


def _pow(base: Value, exp: Value) -> Value:
    if isinstance(base, Fraction) and isinstance(exp, Fraction):
        if exp.denominator == 1:
            size = max(base.numerator.bit_length(), base.denominator.bit_length())
            if abs(exp.numerator) * size > _MAX_BITS:
                raise _NotNumeric
            if base == 0 and exp < 0:
                raise ZeroDivisionError
            return base ** exp.numerator
        if exp == Fraction(1, 2):
            return _sqrt(base)
    if base < 0:
        raise _NotNumeric  # a real root of a negative is not worth the ambiguity
    result = math.pow(float(base), float(exp))
    if not math.isfinite(result):
        raise _NotNumeric
    return result
