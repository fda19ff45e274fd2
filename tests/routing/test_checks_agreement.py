"""The agreement check and run_checks' choice of the accepted answer."""

from collections.abc import Sequence
from typing import Any

from thrifty.routing.answer import Answer, ToolCall
from thrifty.routing.checks import (
    AgreementCheck,
    AgreementConfig,
    CheckContext,
    RefusalCheck,
    run_checks,
)
from thrifty.routing.voting import lexical_similarity, vote


def ans(model: str, text: str, calls: tuple[ToolCall, ...] = ()) -> Answer:
    return Answer(model, text, "stop", calls)


def check(answers: Sequence[Answer], request: dict[str, Any] | None = None,
          **config: Any) -> Any:
    ctx = CheckContext(request or {}, answers)
    return AgreementCheck(AgreementConfig(**config)).run(ctx)


def test_two_of_three_agree_and_the_majority_wins() -> None:
    answers = [ans("a", "The answer is \\boxed{12}"), ans("b", "#### 12.00"),
               ans("c", "The answer is 15")]
    result = check(answers)
    assert result.passed
    assert result.winner is answers[1]          # the latest member of the majority
    assert result.score == 2 / 3
    assert "2 of 3 answers agree (exact)" in result.detail


def test_no_majority_fails() -> None:
    result = check([ans("a", "#### 3"), ans("b", "#### 4"), ans("c", "#### 5")])
    assert not result.passed and result.winner is None
    assert "need 2" in result.detail


def test_a_single_answer_cannot_agree() -> None:
    assert not check([ans("a", "#### 3")]).passed


def test_min_votes_three() -> None:
    answers = [ans("a", "7"), ans("b", "7"), ans("c", "8")]
    assert not check(answers, min_votes=3).passed
    assert check([*answers, ans("d", "7.0")], min_votes=3).passed


def test_answers_without_a_final_answer_do_not_vote() -> None:
    assert not check([ans("a", ""), ans("b", "")]).passed


def test_earlier_tiers_can_be_excluded() -> None:
    answers = [ans("cheap", "#### 9"), ans("mid", "#### 9")]
    ctx = CheckContext({}, answers, tier_start=1)
    assert AgreementCheck(AgreementConfig()).run(ctx).passed
    assert not AgreementCheck(AgreementConfig(earlier_tiers=False)).run(ctx).passed


def test_exact_vs_semantic_on_free_text() -> None:
    a = ans("a", "Photosynthesis turns light, water and carbon dioxide into glucose and "
                 "oxygen inside the chloroplasts of plant cells.")
    b = ans("b", "In plant cells, chloroplasts use light to turn water and carbon dioxide "
                 "into glucose, releasing oxygen: that is photosynthesis.")
    # exact: both long texts fall back to their last number, and neither has one
    assert not check([a, b], mode="exact").passed
    semantic = check([a, b], mode="semantic", threshold=0.5)
    assert semantic.passed and "(semantic)" in semantic.detail
    assert check([a, b], mode="auto", threshold=0.5).passed   # long answers: semantic
    unrelated = ans("c", "The French Revolution began in 1789 with the storming of the "
                         "Bastille, ending the monarchy of Louis XVI.")
    assert not check([a, unrelated], mode="semantic", threshold=0.5).passed


def test_auto_uses_exact_for_short_answers() -> None:
    result = check([ans("a", "Paris"), ans("b", "'Paris'")], mode="auto")
    assert result.passed and "(exact)" in result.detail
    assert not check([ans("a", "Paris"), ans("b", "Lyon")], mode="auto").passed


def test_pluggable_embedder() -> None:
    class Fake:
        def __init__(self) -> None:
            self.calls = 0

        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            self.calls += 1
            return [[1.0, 0.0] if "cat" in t else [0.0, 1.0] for t in texts]

    fake = Fake()
    answers = [ans("a", "A cat " * 20), ans("b", "Another cat " * 20), ans("c", "Dog " * 20)]
    ctx = CheckContext({}, answers)
    result = AgreementCheck(AgreementConfig(mode="semantic", threshold=0.9), fake).run(ctx)
    assert result.passed and result.winner is answers[1] and fake.calls == 1


def test_structured_answers_compare_parsed_json() -> None:
    request = {"response_format": {"type": "json_object"}}
    answers = [ans("a", '{"x": 1, "y": [1, 2]}'), ans("b", '{ "y": [1, 2.0], "x": 1 }'),
               ans("c", '{"x": 2}')]
    result = check(answers, request)
    assert result.passed and "structured" in result.detail and result.winner is answers[1]
    assert not check([answers[0], answers[2]], request).passed


def test_tool_calls_compare_by_name_and_arguments() -> None:
    one = (ToolCall("get_weather", '{"city": "Oslo", "unit": "c"}'),)
    same = (ToolCall("get_weather", '{"unit": "c", "city": "Oslo"}'),)
    other = (ToolCall("get_weather", '{"city": "Bergen", "unit": "c"}'),)
    assert check([ans("a", "", one), ans("b", "", same)]).passed
    assert not check([ans("a", "", one), ans("b", "", other)]).passed
    assert not check([ans("a", "", one), ans("b", "It is sunny in Oslo")]).passed


def test_lexical_similarity_bounds() -> None:
    assert lexical_similarity("the same text", "the same text") == 1.0
    assert lexical_similarity("", "anything") == 0.0
    assert 0 < lexical_similarity("colour of the sky", "color of the sky") < 1


def test_vote_ties_go_to_the_latest_answer() -> None:
    answers = [ans("a", "1"), ans("b", "2"), ans("c", "1"), ans("d", "2")]
    assert vote(answers, {}).members == (1, 3)


def test_run_checks_accepts_the_majority_and_judges_it() -> None:
    answers = [ans("a", "#### 12"), ans("b", "The answer is 12"),
               ans("c", "I'm sorry, but I can't help with that.")]
    ok, results, accepted = run_checks(
        [RefusalCheck(), AgreementCheck(AgreementConfig())], CheckContext({}, answers))
    # the refusing candidate is outvoted; refusal is judged on the elected answer
    assert ok and accepted is answers[1]
    assert [r.name for r in results] == ["agreement", "refusal"]


def test_run_checks_without_agreement_judges_the_candidate() -> None:
    answers = [ans("a", "fine"), ans("b", "I'm sorry, but I can't help with that.")]
    ok, results, accepted = run_checks([RefusalCheck()], CheckContext({}, answers))
    assert not ok and accepted is None and not results[0].passed
    ok, _, accepted = run_checks([RefusalCheck()], CheckContext({}, answers[:1]))
    assert ok and accepted is answers[0]


def test_run_checks_with_no_answer_fails() -> None:
    ok, results, accepted = run_checks([RefusalCheck()], CheckContext({}, []))
    assert not ok and accepted is None and results[0].name == "answers"


def test_run_checks_with_no_checks_accepts_the_candidate() -> None:
    answers = [ans("a", "x")]
    assert run_checks([], CheckContext({}, answers)) == (True, [], answers[0])


def test_agreement_check_alone_on_no_answers_fails_cleanly() -> None:
    result = AgreementCheck(AgreementConfig()).run(CheckContext({}, []))
    assert not result.passed and result.winner is None
