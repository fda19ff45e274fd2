"""final_answer() extraction forms and Answer.from_completion()."""

import pytest

from thrifty.routing.answer import Answer, ToolCall, agree, final_answer


@pytest.mark.parametrize(("text", "expected"), [
    ('```json\n{\n    "reasoning": "3 bags of 4 is 12",\n    "answer": "12"\n}\n```', "12"),
    ('{"reasoning": "the loop reverses it", "answer": "\'cba\'"}', "'cba'"),
    ('{"reasoning": "r", "answer": 18}', "18"),
    ('{"reasoning": "r", "answer": [1, 2]}', "[1, 2]"),
    ('{"reasoning": "unescaped "quote" inside", "answer": "7"}', "7"),
    ("So the area is \\boxed{\\frac{9}{2}}.", "\\frac{9}{2}"),
    ("First \\boxed{1}, corrected: \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
    ("[ANSWER] assert f('x') == 'xx' [/ANSWER]", "assert f('x') == 'xx'"),
    ("She has 3 + 4 = 7 left.\n#### 7", "7"),
    ("Therefore, the answer is $24$.", "$24$"),
    ("The final answer is 3.5. I hope it is correct.", "3.5"),
    ("Final Answer: The final answer is $\\dfrac{1}{4}$. I hope it is correct.",
     "$\\dfrac{1}{4}$"),
    ("Reasoning here.\nAnswer: (B)", "(B)"),
    ("**Answer:** 42", "42"),
    ("The output is:\n```python\n{'a': 1}\n```", "{'a': 1}"),
    ("Running it prints `'done'`.", "'done'"),
    ("```\nassert f(3) == [3, 3]\n```", "[3, 3]"),
    ("He walks 2 miles, then 3 more, 5 in total", "5"),
    ("It costs $1,200 in all", "$1,200"),
])
def test_final_answer_forms(text: str, expected: str) -> None:
    assert final_answer(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "no digits and no markers here", "```\n```"])
def test_final_answer_none_when_nothing_recognisable(text: str) -> None:
    assert final_answer(text) is None


def test_last_number_fallback_can_be_turned_off() -> None:
    assert final_answer("roughly 5 of them", last_number=False) is None
    assert final_answer("The answer is 5", last_number=False) == "5"


def test_extracted_answers_from_different_styles_agree() -> None:
    a = final_answer('{"reasoning": "...", "answer": "$1,500"}')
    b = final_answer("So in total it is \\boxed{1500}.")
    c = final_answer("... \n#### 1500.00")
    assert a and b and c
    assert agree(a, b) and agree(b, c)


def test_from_completion_reads_text_tools_finish_and_logprobs() -> None:
    body = {
        "choices": [{
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function",
                                "function": {"name": "get_weather",
                                             "arguments": '{"city": "Oslo"}'}}],
            },
            "logprobs": {"content": [{"token": "a", "logprob": -0.1},
                                     {"token": "b", "logprob": -0.3}]},
        }],
    }
    answer = Answer.from_completion("small-model", body)
    assert answer.model == "small-model"
    assert answer.text == ""
    assert answer.finish_reason == "tool_calls"
    assert answer.tool_calls == (ToolCall("get_weather", '{"city": "Oslo"}'),)
    assert answer.logprobs == (-0.1, -0.3)


def test_from_completion_content_parts_and_missing_logprobs() -> None:
    body = {"choices": [{"finish_reason": "stop", "message": {
        "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]}}]}
    answer = Answer.from_completion("m", body)
    assert answer.text == "Hello there"
    assert answer.logprobs is None
    assert answer.tool_calls == ()


@pytest.mark.parametrize("body", [{}, {"choices": []}, {"choices": ["x"]},
                                  {"choices": [{"message": "nope"}]}])
def test_from_completion_tolerates_malformed_bodies(body: dict[str, object]) -> None:
    answer = Answer.from_completion("m", body)
    assert answer.text == "" and answer.finish_reason is None and answer.tool_calls == ()
