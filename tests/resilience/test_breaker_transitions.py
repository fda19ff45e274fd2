"""Every transition of the pure circuit breaker, with time as plain numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from thrifty.resilience.breaker import (
    CLOSED,
    BreakerConfig,
    BreakerState,
    ErrorClass,
    Phase,
    allow,
    cooldown_for,
    on_failure,
    on_success,
)

T0 = 1_700_000_000.0
CFG = BreakerConfig(failure_threshold=3, min_requests=10, error_rate=0.5, window_s=60,
                    half_open_probes=2, probe_timeout_s=30, base_cooldown_s=5,
                    cooldown_growth=2, max_cooldown_s=40, rate_limit_cooldown_s=10,
                    auth_cooldown_s=600, max_retry_after_s=120)


def fail(state: BreakerState, now: float, cls: ErrorClass = ErrorClass.SERVER,
         retry_after: float | None = None, cfg: BreakerConfig = CFG) -> BreakerState:
    return on_failure(state, now, cfg, cls, retry_after)


def opened(now: float = T0, cls: ErrorClass = ErrorClass.SERVER) -> BreakerState:
    s = CLOSED
    for _ in range(CFG.failure_threshold):
        s = fail(s, now, cls)
    assert s.state is Phase.OPEN
    return s


def half_open(s: BreakerState, now: float) -> BreakerState:
    ok, s = allow(s, now, CFG)
    assert ok and s.state is Phase.HALF_OPEN
    return s


# ---- closed -> open ---------------------------------------------------------------------


def test_consecutive_failures_open_at_the_threshold() -> None:
    s = fail(fail(CLOSED, T0), T0 + 1)
    assert s.state is Phase.CLOSED and s.failures == 2
    s = fail(s, T0 + 2)
    assert s.state is Phase.OPEN
    assert s.opened_at == T0 + 2 and s.cooldown_s == 5 and s.opens == 1
    assert s.last_error is ErrorClass.SERVER


def test_a_success_resets_the_consecutive_count() -> None:
    s = fail(fail(CLOSED, T0), T0)
    s = on_success(s, T0, CFG)
    assert s.failures == 0
    s = fail(fail(s, T0), T0)
    assert s.state is Phase.CLOSED


def test_error_rate_over_the_window_opens_without_consecutive_failures() -> None:
    s = CLOSED
    for i in range(9):  # alternate: never 3 failures in a row
        s = on_success(s, T0 + i, CFG) if i % 2 else fail(s, T0 + i)
    assert s.state is Phase.CLOSED  # 9 results < min_requests, though 5/9 failed
    s = fail(s, T0 + 9)  # 10 results, 6 failed
    assert s.state is Phase.OPEN
    assert s.error_rate(T0 + 9, CFG.window_s) == pytest.approx(0.6)


def test_error_rate_below_the_threshold_stays_closed() -> None:
    s = CLOSED
    for i in range(30):
        s = fail(s, T0 + i) if i % 3 == 0 else on_success(s, T0 + i, CFG)
    assert s.state is Phase.CLOSED
    assert s.error_rate(T0 + 30, CFG.window_s) == pytest.approx(10 / 30)


def test_the_window_slides_old_results_fade_then_vanish() -> None:
    cfg = CFG.model_copy(update={"error_rate": 0.9})
    s = CLOSED
    for i in range(10):
        s = fail(s, T0, cfg=cfg) if i % 2 else on_success(s, T0, cfg)
    assert s.state is Phase.CLOSED
    assert s.error_rate(T0, 60) == pytest.approx(0.5)
    # Half-way into the next window the old one counts half (5 results, 2.5 failed) and
    # two fresh successes dilute it.
    s = on_success(on_success(s, T0 + 90, cfg), T0 + 90, cfg)
    assert s.window_requests == 2 and s.prev_requests == 10
    assert s.error_rate(T0 + 90, 60) == pytest.approx(2.5 / 7)
    assert s.error_rate(T0 + 200, 60) == 0.0  # over two windows later: forgotten
    s = fail(s, T0 + 200, cfg=cfg)
    assert (s.window_requests, s.window_failures, s.prev_requests) == (1, 1, 0)


# ---- open -> half-open -> closed / open ---------------------------------------------------


def test_open_refuses_until_the_cooldown_ends() -> None:
    s = opened()
    ok, same = allow(s, T0 + 4.999, CFG)
    assert not ok and same is s
    ok, s = allow(s, T0 + 5, CFG)
    assert ok and s.state is Phase.HALF_OPEN and s.probes_in_flight == 1


def test_half_open_hands_out_exactly_half_open_probes() -> None:
    s = half_open(opened(), T0 + 5)
    ok, s = allow(s, T0 + 6, CFG)
    assert ok and s.probes_in_flight == 2
    ok, s2 = allow(s, T0 + 7, CFG)
    assert not ok and s2 is s


def test_lost_probes_are_given_up_after_the_probe_timeout() -> None:
    s = half_open(opened(), T0 + 5)
    ok, s = allow(s, T0 + 5, CFG)
    assert ok
    assert not allow(s, T0 + 34.9, CFG)[0]
    ok, s = allow(s, T0 + 35, CFG)
    assert ok and s.probes_in_flight == 1 and s.probe_at == T0 + 35


def test_a_probe_success_closes_and_starts_afresh() -> None:
    s = half_open(opened(), T0 + 5)
    s = on_success(s, T0 + 6, CFG)
    assert s.state is Phase.CLOSED
    assert (s.failures, s.opens, s.probes_in_flight, s.window_requests) == (0, 0, 0, 0)
    assert s.last_error is ErrorClass.SERVER  # kept for the dashboard
    assert fail(s, T0 + 7).state is Phase.CLOSED  # the old window does not re-open it


def test_a_probe_failure_reopens_with_a_growing_capped_cooldown() -> None:
    s, now, cooldowns = opened(), T0, []
    for _ in range(6):
        cooldowns.append(s.cooldown_s)
        now = s.opened_at + s.cooldown_s
        s = fail(half_open(s, now), now)
        assert s.state is Phase.OPEN and s.opened_at == now
    assert cooldowns == [5, 10, 20, 40, 40, 40]
    assert s.opens == 7
    # After a close the growth starts over.
    now = s.opened_at + s.cooldown_s
    s = on_success(half_open(s, now), now, CFG)
    assert s.opens == 0
    for _ in range(CFG.failure_threshold):
        s = fail(s, now)
    assert s.state is Phase.OPEN and s.cooldown_s == 5 and s.opens == 1


def test_late_success_while_open_changes_nothing() -> None:
    s = opened()
    assert on_success(s, T0 + 1, CFG) is s


def test_late_failure_while_open_only_extends_for_a_longer_retry_after() -> None:
    s = opened()
    assert fail(s, T0 + 1) is s
    assert fail(s, T0 + 1, ErrorClass.RATE_LIMIT, retry_after=2) is s  # ends before T0+5
    longer = fail(s, T0 + 1, ErrorClass.RATE_LIMIT, retry_after=30)
    assert longer.opened_at == T0 and longer.cooldown_remaining(T0 + 1) == 30
    assert longer.last_error is ErrorClass.RATE_LIMIT


# ---- the error classes ------------------------------------------------------------------


def test_rate_limit_with_retry_after_opens_at_once_for_that_long() -> None:
    s = fail(CLOSED, T0, ErrorClass.RATE_LIMIT, retry_after=17)
    assert s.state is Phase.OPEN and s.cooldown_s == 17
    assert not allow(s, T0 + 16.9, CFG)[0]
    assert allow(s, T0 + 17, CFG)[0]


def test_a_short_retry_after_still_gets_the_minimum_rate_limit_cooldown() -> None:
    s = fail(CLOSED, T0, ErrorClass.RATE_LIMIT, retry_after=1)
    assert s.cooldown_s == CFG.rate_limit_cooldown_s


def test_retry_after_is_capped_against_absurd_values() -> None:
    s = fail(CLOSED, T0, ErrorClass.RATE_LIMIT, retry_after=86_400)
    assert s.cooldown_s == CFG.max_retry_after_s


def test_rate_limit_without_retry_after_counts_like_any_failure() -> None:
    s = fail(fail(CLOSED, T0, ErrorClass.RATE_LIMIT), T0, ErrorClass.RATE_LIMIT)
    assert s.state is Phase.CLOSED
    s = fail(s, T0, ErrorClass.RATE_LIMIT)
    assert s.state is Phase.OPEN and s.cooldown_s == CFG.rate_limit_cooldown_s


def test_open_on_retry_after_can_be_turned_off() -> None:
    cfg = CFG.model_copy(update={"open_on_retry_after": False})
    s = fail(CLOSED, T0, ErrorClass.RATE_LIMIT, retry_after=17, cfg=cfg)
    assert s.state is Phase.CLOSED and s.failures == 1


def test_server_retry_after_is_honoured_too() -> None:
    s = CLOSED
    for _ in range(3):
        s = fail(s, T0, ErrorClass.SERVER, retry_after=25)
    assert s.cooldown_s == 25


def test_auth_failures_open_for_the_long_cooldown() -> None:
    s = opened(cls=ErrorClass.AUTH)
    assert s.cooldown_s == 600
    assert not allow(s, T0 + 599, CFG)[0]


@pytest.mark.parametrize("cls", [ErrorClass.TIMEOUT, ErrorClass.CONNECTION,
                                 ErrorClass.BAD_RESPONSE])
def test_timeouts_and_connection_failures_cool_down_like_server_errors(cls: ErrorClass) -> None:
    assert opened(cls=cls).cooldown_s == opened(cls=ErrorClass.SERVER).cooldown_s
    for opens in range(1, 8):
        assert cooldown_for(cls, opens, None, CFG) == cooldown_for(ErrorClass.SERVER, opens,
                                                                   None, CFG)


def test_client_errors_never_count_in_any_phase() -> None:
    for s in (CLOSED, fail(CLOSED, T0), opened(), half_open(opened(), T0 + 5)):
        for _ in range(10):
            assert fail(s, T0 + 6, ErrorClass.CLIENT, retry_after=99) is s


def test_allow_on_a_closed_breaker_allocates_nothing() -> None:
    s = fail(CLOSED, T0)
    ok, same = allow(s, T0)
    assert ok and same is s


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        BreakerConfig(failure_treshold=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        BreakerConfig(half_open_probes=0)


# ---- invariants over random histories ---------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["allow", "ok", "fail"]),
        st.floats(0, 50),
        st.sampled_from(list(ErrorClass)),
        st.one_of(st.none(), st.floats(0, 10_000)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_random_histories_keep_the_invariants(ops: list[tuple[str, float, ErrorClass,
                                                              float | None]]) -> None:
    s, now = CLOSED, T0
    longest = max(CFG.max_cooldown_s, CFG.auth_cooldown_s, CFG.max_retry_after_s)
    for op, dt, cls, ra in ops:
        now += dt
        if op == "allow":
            ok, new = allow(s, now, CFG)
            assert new is s if not ok else new.state is not Phase.OPEN
            if s.state is Phase.OPEN and ok:
                assert now >= s.opened_at + s.cooldown_s  # never before the cooldown ends
            s = new
        elif op == "ok":
            s = on_success(s, now, CFG)
        else:
            before = s
            s = on_failure(s, now, CFG, cls, ra)
            if cls is ErrorClass.CLIENT:
                assert s is before
        assert 0 <= s.probes_in_flight <= CFG.half_open_probes
        assert s.cooldown_s <= longest
        if s.state is Phase.CLOSED:
            assert s.failures < CFG.failure_threshold and s.opens == 0
