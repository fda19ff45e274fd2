"""Truncation, refusal, hedging, logprob and verifier checks, and parse_checks."""

import math
from typing import Any

import pytest

from thrifty.errors import ConfigError
from thrifty.routing.answer import Answer
from thrifty.routing.checks import (
    AgreementCheck,
    CheckContext,
    CheckResult,
    FormatCheck,
    HedgingCheck,
    HedgingConfig,
    LogprobCheck,
    LogprobConfig,
    RefusalCheck,
    TruncationCheck,
    VerifierCheck,
    VerifierConfig,
    parse_checks,
)
from thrifty.routing.verifier import (
    calibrate_verifier_threshold,
    parse_verifier_score,
    verifier_passes,
    verifier_prompt,
    verifier_question,
)


def ctx(text: str = "ok", finish: str | None = "stop",
        logprobs: tuple[float, ...] | None = None, **extra: Any) -> CheckContext:
    return CheckContext({}, [Answer("m", text, finish, (), logprobs)], **extra)


def test_truncation() -> None:
    assert TruncationCheck().run(ctx(finish="stop")).passed
    cut = TruncationCheck().run(ctx(finish="length"))
    assert not cut.passed and "length" in cut.detail


def test_refusal_check() -> None:
    assert RefusalCheck().run(ctx("Here you go: 42")).passed
    assert not RefusalCheck().run(ctx("I can't help with that.")).passed


def test_hedging_check_threshold_is_configurable() -> None:
    hedgy = ctx("Possibly 42, but I'm not sure.")
    result = HedgingCheck().run(hedgy)
    assert not result.passed and result.score is not None and result.score > 0.5
    assert HedgingCheck(HedgingConfig(max_score=0.95)).run(hedgy).passed
    assert HedgingCheck().run(ctx("42")).passed


def test_logprob_mean_and_min() -> None:
    probs = (-0.05, -0.1, -2.0)
    mean = LogprobCheck(LogprobConfig(threshold=-1.0)).run(ctx(logprobs=probs))
    assert mean.passed and mean.score == pytest.approx(-0.7166, abs=1e-3)
    low = LogprobCheck(LogprobConfig(threshold=-1.0, aggregate="min")).run(ctx(logprobs=probs))
    assert not low.passed and low.score == -2.0


def test_logprob_skipped_unless_required() -> None:
    skipped = LogprobCheck().run(ctx(logprobs=None))
    assert skipped.passed and "skipped" in skipped.detail and skipped.score is None
    required = LogprobCheck(LogprobConfig(require=True)).run(ctx(logprobs=None))
    assert not required.passed and "required" in required.detail


def test_verifier_check_reads_the_executors_score() -> None:
    check = VerifierCheck(VerifierConfig(model="judge", threshold=0.7))
    assert check.run(ctx(verifier_score=0.9)).passed
    assert not check.run(ctx(verifier_score=0.5)).passed
    missing = check.run(ctx())
    assert not missing.passed and "judge" in missing.detail


@pytest.mark.parametrize(("reply", "score"), [
    ("Score: 0.8", 0.8),
    ("score: 8/10", 0.8),
    ("**Score:** 7", 0.7),
    ("Score = 85%", 0.85),
    ("I'd give it 9 out of 10.", 0.9),
    ("Reasoning... Score: 0.2\nOn reflection, Score: 0.6", 0.6),
    ("Yes, the answer is correct.", 1.0),
    ("No. The sum is wrong.", 0.0),
    ("0.35", 0.35),
    ("Score: -1", 0.0),
    ("It depends.", None),
    ("Score: 150", None),
    ("Score: 3/0", None),
])
def test_parse_verifier_score(reply: str, score: float | None) -> None:
    assert parse_verifier_score(reply) == (pytest.approx(score) if score is not None else None)


def test_verifier_passes() -> None:
    assert verifier_passes(0.8, 0.8)
    assert not verifier_passes(0.79, 0.8)
    assert not verifier_passes(None, 0.0)


def test_verifier_prompt_fills_placeholders_once() -> None:
    messages = verifier_prompt("What is {answer}?", "x = {question}",
                               template="Q: {question}\nA: {answer}")
    assert messages[0]["role"] == "system"
    assert messages[-1] == {"role": "user", "content": "Q: What is {answer}?\nA: x = {question}"}
    assert verifier_prompt("q", "a", system=None)[0]["role"] == "user"


def test_verifier_question_is_the_last_user_message() -> None:
    body = {"messages": [{"role": "user", "content": "first"},
                         {"role": "assistant", "content": "hi"},
                         {"role": "user", "content": [{"type": "text", "text": "second"}]}]}
    assert verifier_question(body) == "second"
    assert verifier_question({}) == ""


def test_calibrate_verifier_threshold() -> None:
    scores = [0.95, 0.9, 0.8, 0.7, 0.6, 0.4, 0.3]
    labels = [True, True, True, False, True, False, False]
    assert calibrate_verifier_threshold(scores, labels, 1.0) == 0.8
    assert calibrate_verifier_threshold(scores, labels, 0.8) == 0.6   # 4 of 5 above 0.6
    assert calibrate_verifier_threshold([0.9, 0.8], [False, False], 0.5) == math.inf
    with pytest.raises(ValueError):
        calibrate_verifier_threshold([0.1], [True, False], 0.9)
    with pytest.raises(ValueError):
        calibrate_verifier_threshold([0.1], [True], 0.0)


def test_parse_checks_builds_each_kind() -> None:
    checks = parse_checks(
        ["format", "truncation", "refusal", {"hedging": {"max_score": 0.4}},
         {"agreement": {"min_votes": 3, "mode": "exact"}}, {"logprob": None},
         {"verifier": {"model": "judge", "threshold": 0.9}}],
        where="aliases.auto.tiers[0].checks")
    assert [c.name for c in checks] == ["format", "truncation", "refusal", "hedging",
                                        "agreement", "logprob", "verifier"]
    assert isinstance(checks[0], FormatCheck)
    assert isinstance(checks[3], HedgingCheck) and checks[3].config.max_score == 0.4
    assert isinstance(checks[4], AgreementCheck) and checks[4].config.min_votes == 3
    assert all(isinstance(c.run(ctx(verifier_score=1.0)), CheckResult) for c in checks)


@pytest.mark.parametrize(("raw", "message"), [
    (["spellcheck"], "tiers[0].checks[0]: unknown check 'spellcheck'; known: format"),
    ([{"hedging": {"max": 0.5}}], "tiers[0].checks[0].hedging.max: Extra inputs"),
    (["format", {"hedging": {"max_score": 2}}],
     "tiers[0].checks[1].hedging.max_score: Input should be less than or equal to 1 (got 2)"),
    ([{"agreement": {"mode": "fuzzy"}}], "checks[0].agreement.mode: Input should be"),
    ([{"agreement": {"min_votes": 1}}], "checks[0].agreement.min_votes"),
    (["verifier"], "tiers[0].checks[0].verifier.model: Field required"),
    ([{"hedging": 0.5}], "checks[0].hedging: options must be a mapping"),
    ([{"a": {}, "b": {}}], "checks[0]: a check is a name or a one-key mapping"),
    ([42], "checks[0]: a check is a name or a one-key mapping"),
])
def test_parse_checks_errors_name_where_index_and_key(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_checks(raw, where="aliases.auto.tiers[0].checks")
    assert message in str(info.value)
    assert str(info.value).startswith("aliases.auto.tiers[0].checks[")
