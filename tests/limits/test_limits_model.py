"""Limit ids and window arithmetic: aligned UTC windows, calendar months, the endless total."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from thrifty.limits.model import Limit, Window, window_bounds


def _ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> float:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC).timestamp()


def test_limit_id_names_scope_value_resource_and_window() -> None:
    assert Limit("usd", "day", "team", "research", 5).id == "team=research:usd:day"
    assert Limit("requests", "minute", "global", None, 60).id == "global:requests:minute"
    # The amount and the soft ratio are not part of the id: re-sizing a budget keeps its spend.
    assert Limit("usd", "day", "key", "k", 5).id == Limit("usd", "day", "key", "k", 9, 0.5).id


@pytest.mark.parametrize(
    ("window", "now", "bounds"),
    [
        ("minute", _ts(2024, 5, 1, 12, 34, 56), (_ts(2024, 5, 1, 12, 34), _ts(2024, 5, 1, 12, 35))),
        ("hour", _ts(2024, 5, 1, 12, 0), (_ts(2024, 5, 1, 12), _ts(2024, 5, 1, 13))),
        ("day", _ts(2024, 5, 1, 23, 59, 59), (_ts(2024, 5, 1), _ts(2024, 5, 2))),
        ("month", _ts(2024, 2, 29, 23), (_ts(2024, 2, 1), _ts(2024, 3, 1))),
        ("month", _ts(2024, 12, 31, 23, 59), (_ts(2024, 12, 1), _ts(2025, 1, 1))),
        ("month", _ts(2025, 1, 1), (_ts(2025, 1, 1), _ts(2025, 2, 1))),
        ("total", _ts(2024, 5, 1), (0.0, math.inf)),
    ],
)
def test_window_bounds(window: Window, now: float, bounds: tuple[float, float]) -> None:
    assert window_bounds(window, now) == bounds


@given(
    window=st.sampled_from(["minute", "hour", "day", "month"]),
    now=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False),
)
@example(window="month", now=2_051_222_399.9999995)  # rounds up into the next month
def test_every_moment_lies_in_exactly_one_window(window: Window, now: float) -> None:
    start, end = window_bounds(window, now)
    assert start <= now < end
    # The window is the same seen from any moment inside it, and the next one starts at end.
    assert window_bounds(window, start) == (start, end)
    assert window_bounds(window, end)[0] == end


def test_month_bounds_stay_right_when_moments_jump_between_months() -> None:
    """The month's bounds are reused while moments stay inside it: jumping back and forth
    across a month end (and a year end) must never return a neighbour's bounds."""
    jan = (_ts(2024, 1, 1), _ts(2024, 2, 1))
    feb = (_ts(2024, 2, 1), _ts(2024, 3, 1))
    dec = (_ts(2023, 12, 1), _ts(2024, 1, 1))
    for now, bounds in [
        (_ts(2024, 1, 31, 23, 59, 59) + 0.5, jan), (_ts(2024, 2, 1), feb),
        (_ts(2024, 1, 15), jan), (_ts(2024, 1, 1) - 0.25, dec), (_ts(2024, 2, 29, 23), feb),
        (_ts(2024, 1, 1), jan),
    ]:
        assert window_bounds("month", now) == bounds
