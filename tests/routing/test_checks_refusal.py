"""Refusal and hedging detection: positives, negatives, and the speed the cascade needs."""

import time

import pytest

from thrifty.routing.refusal import hedging_score, is_refusal


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with that.",
    "I’m sorry, but I can’t assist with this request.",
    "I cannot provide instructions for making weapons.",
    "I won't be able to help with this.",
    "As an AI language model, I cannot browse the internet or access real-time data.",
    "As an AI, I'm unable to share personal opinions on that.",
    "I must respectfully decline.",
    "This request violates our usage policies, so I will not answer it.",
    "Unfortunately that goes against my guidelines.",
    "**I cannot help with creating malware.**",
    "Lo siento, pero no puedo ayudar con eso.",
    "Je suis désolé, mais je ne peux pas répondre à cette question.",
    "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.",
    "Desculpe, mas não posso ajudar com isso.",
    "抱歉，我无法提供这方面的帮助。",
])
def test_refusals(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize("text", [
    "",
    "Paris is the capital of France.",
    "Sure! Here's how you can't go wrong: preheat the oven to 200°C.",
    "You can help your plants by watering them weekly.",
    "The request handler returns 404 when the route is missing.",
    "As an AI model trained on code, here is a Python function:\n\ndef f(x): return x",
    # a long answer that mentions a refusal far from its opening is still an answer
    "Here is a polite way to decline an invitation. " + "Some advice. " * 60
    + "You might say: I'm sorry, but I can't help with the move this weekend.",
])
def test_non_refusals(text: str) -> None:
    assert not is_refusal(text)


@pytest.mark.parametrize(("text", "low", "high"), [
    ("The answer is 42.", 0.0, 0.0),
    ("Possibly 42.", 0.2, 0.5),
    ("I'm not sure, but it might be 42.", 0.6, 1.0),
    ("I don't have enough information to answer that.", 0.5, 1.0),
    ("It's unclear. I think it could be 7, but I may be wrong.", 0.9, 1.0),
])
def test_hedging_score_ranges(text: str, low: float, high: float) -> None:
    assert low <= hedging_score(text) <= high


def test_hedging_is_diluted_by_length() -> None:
    short = "It is likely correct."
    long = "It is likely correct. " + "The function sorts the list and returns it. " * 60
    assert hedging_score(long) < hedging_score(short) / 3


def test_hedging_matches_whole_phrases_only() -> None:
    assert hedging_score("The impossibly maybeful unlikelyness") == 0.0
    assert hedging_score("Perhaps.") > 0


def test_under_20_microseconds_per_kilobyte() -> None:
    text = ("The capital of France is Paris; it can be reached by train, and it is known for "
            "its museums, its cafés and the Eiffel Tower, which draws many visitors. ") * 7
    text = text[:1024]
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        is_refusal(text)
        hedging_score(text)
    per_call = (time.perf_counter() - start) / n / 2
    # generous bound for slow CI machines; measured ~5-10 us here
    assert per_call < 60e-6, per_call
