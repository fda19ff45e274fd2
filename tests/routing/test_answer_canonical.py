"""canonical() and agree(): one hand-written example per rule, and the near misses each
rule must not merge."""

import pytest

from thrifty.routing.answer import agree, canonical


@pytest.mark.parametrize(("a", "b"), [
    # numbers: commas, trailing zeros, currency, percent, units, degrees
    ("1,250", "1250"),
    ("$1,250.00", "1250"),
    ("\\$48", "48"),
    ("€15", "15"),
    ("12.50", "12.5"),
    ("7.0", "7"),
    ("35%", "35"),
    ("35\\%", "35"),
    ("18 apples", "18"),
    ("42 miles per hour", "42"),
    ("300 calories/day", "300"),
    ("750g", "750"),
    ("5 \\text{ cm}", "5"),
    ("5\\mbox{ inches}", "5"),
    ("60^\\circ", "60"),
    ("60^{\\circ}", "60"),
    ("60°", "60"),
    ("-4°F", "-4"),
    ("12.", "12"),
    ("-3", "−3"),
    # fractions
    ("\\frac{3}{4}", "3/4"),
    ("\\dfrac{6}{8}", "0.75"),
    ("\\tfrac12", "1/2"),
    ("\\frac{10}{2}", "5"),
    ("-\\frac{7}{3}", "-7/3"),
    ("14/6", "7/3"),
    # sqrt and simple expressions
    ("2\\sqrt{5}", "2 * sqrt(5)"),
    ("2√5", "\\sqrt{20}"),
    ("\\frac{\\sqrt{2}}{2}", "sqrt(2)/2"),
    ("\\sqrt[3]{8}", "2"),
    ("3^4", "81"),
    ("2^{10}", "1024"),
    ("4\\pi", "4 pi"),
    ("9 \\cdot 3", "27"),
    # LaTeX noise and wrappers
    ("$\\left( 3, -1 \\right)$", "(3,-1)"),
    ("\\boxed{17}", "17"),
    ("\\! 1\\,000", "1000"),
    ("x = 9", "9"),
    ("a^{2} + b", "a^2+b"),
    ("15 - 22b", "15-22b"),
    ("2 + 8 + 6 = 16", "16"),
    # tuples and intervals
    ("(2, 5)", "(2,5)"),
    ("[-1, \\infty)", "[-1,\\infty)"),
    ("(-\\infty, \\frac{1}{2}]", "(-inf, 0.5]"),
    ("\\left[ 0, 2\\pi \\right)", "[0, 2pi)"),
    # Python literals
    ("'hello'", "hello"),
    ('"hello"', "'hello'"),
    ("'two  spaces'", "two  spaces"),
    ("['a', 1]", '["a", 1]'),
    ("[1,2,3]", "[1, 2, 3]"),
    ("{'x': 1, 'y': 2}", '{"y": 2, "x": 1}'),
    ("{3, 1, 2}", "{1, 2, 3}"),
    ("(1,)", "(1, )"),
    ("True", "true"),
    ("False", "'False'"),
    ("None", "null"),
    ("'a\\nb'", "a\\nb"),
    ("'a\\tb'", "a\\tb"),
    ("line one\nline two", "line one\\nline two"),
    ("u'abc'", "abc"),
    ("''", '""'),
    ("assert f('ab') == 'ba'", "'ba'"),
    ("1, 2", "(1, 2)"),
    ("{'k': [1.0, 2]}", "{'k': [1, 2]}"),
    # words
    ("Infinity", "\\infty"),
    ("YES", "yes"),
    ("No solution", "no solution"),
])
def test_equal_forms_agree(a: str, b: str) -> None:
    assert agree(a, b), (canonical(a), canonical(b))
    assert agree(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("12", "13"),
    ("1250", "125"),
    ("0.5", "0.05"),
    ("812345.67", "812346"),        # decimals as written compare exactly
    ("1/3", "0.333"),               # a rounded value is not the fraction
    ("123456789012", "123456789013"),  # integers compare exactly, however large
    ("07123", "7123"),              # a leading zero makes it a string of digits
    ("'20'", "20"),                 # a string of digits is not the number
    ("'Hello'", "hello"),           # case matters in program output
    ("'a  b'", "a b"),              # so does inner whitespace
    ("'a\\n'", "a"),
    ("Ann*Lee", "AnnLee"),          # program output, not a product
    ("['a', 'b']", "'[\"a\", \"b\"]'"),  # a list is not a string holding one
    ("(1, 2)", "[1, 2]"),
    ("(1, 2)", "(1, 2]"),
    ("41q Mary k", "41"),           # a number followed by words is not always a unit
    ("7Ab-Cde", "7"),
    ("\\sqrt{2}", "1.41"),
    ("2\\sqrt{3}", "3\\sqrt{2}"),
    ("True", "1"),
    ("x + 1", "x + 2"),
    ("'x'", "'y'"),
])
def test_different_answers_disagree(a: str, b: str) -> None:
    assert not agree(a, b), (canonical(a), canonical(b))


def test_numeric_tolerance_applies_to_inexact_values() -> None:
    assert agree("1/3", "0.3333333")
    assert agree("2\\sqrt{3}", "3.4641016")
    assert agree("\\pi", "3.14159265")
    assert not agree("\\pi", "3.1416")


def test_empty_answers_agree_with_nothing() -> None:
    assert canonical("") == ""
    assert canonical("   ") == ""
    assert not agree("", "")
    assert not agree("", "0")
    assert not agree("$$", "$$")


def test_canonical_forms_are_stable_and_readable() -> None:
    assert canonical("$1,050.00") == "1050"
    assert canonical("\\frac{6}{4}") == "1.5"
    assert canonical("\\frac{2}{6}") == "1/3"
    assert canonical("{'b': 1, 'a': 2}") == "{'a': 2, 'b': 1}"
    assert canonical("'abc'") == "abc"
    assert canonical("2\\sqrt{2}").startswith("~2.828427")
    assert canonical("\\left[ 1, 2 \\right)") == "[1, 2)"
    assert canonical("7^{400}") == str(7 ** 400)


def test_huge_and_pathological_inputs_stay_bounded() -> None:
    assert canonical("9" * 5000) == "9" * 5000         # over the size limit: plain text
    assert canonical("10^{99999}") == "10^(99999)"       # not expanded
    assert canonical("[" * 500 + "]" * 500)              # deep nesting does not recurse away
    assert canonical("\\frac{1}{0}") == "((1)/(0))"      # no division error
    assert canonical("\\sqrt{-4}") == "sqrt(-4)"         # no complex numbers
