"""The pure reservation arithmetic every counter back end shares."""

from __future__ import annotations

import pytest

from thrifty.core.estimate import max_prompt_tokens
from thrifty.core.usage import Usage
from thrifty.limits.decide import (
    MergedWants,
    actual_for,
    decide,
    merge_wants,
    settle_amount,
    wants_for,
)
from thrifty.limits.model import Hold, Limit, Refusal

NOW = 1_714_564_800.0 + 90.0  # 2024-05-01T12:01:30Z
RPM = Limit("requests", "minute", "global", None, 10)
TPD_IN = Limit("input_tokens", "day", "key", "k1", 5_000)
OUT = Limit("output_tokens", "hour", "team", "t", 4_000)
USD = Limit("usd", "total", "team", "t", 1_000_000, soft_ratio=0.8)
ALL = [RPM, TPD_IN, OUT, USD]


def test_wants_for_takes_the_worst_case_of_each_resource() -> None:
    assert wants_for(ALL, 900, 1_000, 25_000) == [
        (RPM, 1), (TPD_IN, 900), (OUT, 1_000), (USD, 25_000)
    ]


def test_wants_for_distinct_ids_skip_the_merge_but_not_its_checks() -> None:
    wants = wants_for(ALL, 900, 1_000, 25_000, distinct_ids=True)
    assert type(wants) is MergedWants and merge_wants(wants) is wants
    assert wants == [(RPM, 1), (TPD_IN, 900), (OUT, 1_000), (USD, 25_000)]
    # A negative amount (say a body's max_tokens of -5) still goes through the merge's check.
    negative = wants_for(ALL, 900, -5, 25_000, distinct_ids=True)
    assert type(negative) is not MergedWants
    with pytest.raises(ValueError, match="< 0"):
        merge_wants(negative)
    # Without the promise, the same limit twice is still summed.
    assert merge_wants(wants_for([OUT, OUT], 0, 7, 0)) == [(OUT, 14)]


def test_the_prompt_bound_counts_utf8_bytes() -> None:
    """ASCII prompts skip the encoding (one byte a character); others are encoded."""
    for text in ("plain ascii", "naïve café ☕", "", "日本語" * 100):
        parts = [{"type": "text", "text": text}, {"type": "image_url"}]
        body = {"messages": [{"role": "user", "content": text},
                             {"role": "user", "content": parts}]}
        assert max_prompt_tokens(body) == 8 + len(text.encode()) + 8 + len(
            text.encode()) + 2_000


def test_actual_for_reports_real_use_by_limit_id() -> None:
    usage = Usage(input_tokens=850, output_tokens=120, cached_input_tokens=800)
    assert actual_for(ALL, usage, 3_210) == {
        RPM.id: 1, TPD_IN.id: 850, OUT.id: 120, USD.id: 3_210
    }


def test_merge_wants_sums_one_limit_and_keeps_first_seen_order() -> None:
    assert merge_wants([(OUT, 5), (RPM, 1), (OUT, 7)]) == [(OUT, 12), (RPM, 1)]
    with pytest.raises(ValueError, match="< 0"):
        merge_wants([(RPM, -1)])
    resized = Limit("requests", "minute", "global", None, 99)
    with pytest.raises(ValueError, match="share the id global:requests:minute"):
        merge_wants([(RPM, 1), (resized, 1)])


def test_fits_exactly_at_the_budget_and_holds_from_each_current_window() -> None:
    result = decide([(RPM, 1), (USD, 200_000)], {RPM.id: 9, USD.id: 800_000}, NOW)
    assert result.ok and result.refusal is None
    assert result.holds == (
        Hold(RPM, 1, 1_714_564_860.0),  # the minute 12:01
        Hold(USD, 200_000, 0.0),        # the one "total" window
    )


def test_the_first_limit_without_room_refuses_everything() -> None:
    result = decide([(RPM, 1), (TPD_IN, 10), (OUT, 10)], {RPM.id: 3, TPD_IN.id: 4_991,
                                                          OUT.id: 3_995}, NOW)
    assert not result.ok and result.holds == () and result.warnings == ()
    assert result.refusal == Refusal(TPD_IN, used=4_991, requested=10,
                                     retry_after_s=1_714_608_000.0 - NOW)  # midnight


def test_total_windows_never_suggest_a_retry() -> None:
    result = decide([(USD, 2)], {USD.id: 999_999}, NOW)
    assert result.refusal == Refusal(USD, used=999_999, requested=2, retry_after_s=None)


def test_soft_limits_warn_only_above_their_share() -> None:
    at_share = decide([(USD, 100_000)], {USD.id: 700_000}, NOW)  # 800_000 = 0.8 x budget
    above = decide([(USD, 100_001)], {USD.id: 700_000}, NOW)
    assert at_share.ok and at_share.warnings == ()
    assert above.ok and above.warnings == (USD,)


def test_settle_amount_defaults_to_the_held_amount_and_refuses_negatives() -> None:
    assert settle_amount(USD.id, 500, {USD.id: 120}) == 120
    assert settle_amount(USD.id, 500, {USD.id: 900}) == 900  # spent more than held: recorded
    assert settle_amount(USD.id, 500, {}) == 500
    with pytest.raises(ValueError, match="cannot settle -1"):
        settle_amount(USD.id, 500, {USD.id: -1})
