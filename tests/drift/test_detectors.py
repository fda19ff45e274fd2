"""The change detectors, pure: seeded series, no clock. Stationary noise must never alarm;
a step change must alarm within a bounded number of samples after it, never before, in the
right direction."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import pytest

from thrifty.drift.detectors import Cusum, DetectorParams, PageHinkley, Shift, make_detector
from thrifty.drift.signals import DEFAULTS

Kind = Callable[[DetectorParams], Cusum | PageHinkley]
KINDS: list[Kind] = [Cusum, PageHinkley]


def first_alarm(det: Cusum | PageHinkley, xs: Sequence[float]) -> tuple[int, Shift] | None:
    for i, x in enumerate(xs):
        shift = det.update(x)
        if shift is not None:
            return i, shift
    return None


def gauss(rng: random.Random, n: int, mean: float, sd: float) -> list[float]:
    return [rng.gauss(mean, sd) for _ in range(n)]


def bernoulli(rng: random.Random, n: int, p: float) -> list[float]:
    return [1.0 if rng.random() < p else 0.0 for _ in range(n)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stationary_gaussian_noise_never_alarms(kind: Kind, seed: int) -> None:
    xs = gauss(random.Random(seed), 20_000, 100.0, 15.0)
    assert first_alarm(kind(DetectorParams()), xs) is None


@pytest.mark.parametrize("kind", KINDS)
def test_heavy_tailed_latency_with_spikes_never_alarms(kind: Kind) -> None:
    """Log-normal latencies (sd 0.5 in log space) plus a lone 10x spike every 500 requests:
    the latency signal's defaults must not call that a change."""
    rng = random.Random(11)
    raw = [rng.lognormvariate(math.log(200), 0.5) for _ in range(20_000)]
    for i in range(250, len(raw), 500):
        raw[i] *= 10
    spec = DEFAULTS["latency_ms"]
    assert first_alarm(kind(spec.params), [math.log1p(x) for x in raw]) is None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("step", "side"), [(3.0, "up"), (-3.0, "down")])
def test_step_change_alarms_soon_after_and_not_before(kind: Kind, step: float,
                                                      side: str) -> None:
    rng = random.Random(5)
    before, sd = 400, 10.0
    xs = gauss(rng, before, 100.0, sd) + gauss(rng, 400, 100.0 + step * sd, sd)
    got = first_alarm(kind(DetectorParams()), xs)
    assert got is not None
    at, shift = got
    assert before <= at <= before + 15
    assert shift.direction == side
    assert shift.baseline == pytest.approx(100.0, abs=3.0)
    # the segment since the statistic left zero may start a few samples early: the
    # estimate is diluted, never on the wrong side of half the step
    assert abs(shift.current - 100.0) > abs(step) * sd / 2
    assert (shift.current - 100.0) * step > 0
    assert shift.samples >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_refusal_rate_jump_is_caught_and_a_low_base_rate_is_not(kind: Kind) -> None:
    params = DEFAULTS["refusal_rate"].params
    rng = random.Random(7)
    assert first_alarm(kind(params), bernoulli(rng, 20_000, 0.03)) is None
    xs = bernoulli(rng, 300, 0.01) + bernoulli(rng, 300, 0.5)
    got = first_alarm(kind(params), xs)
    assert got is not None
    at, shift = got
    assert 300 <= at <= 300 + 50
    assert shift.direction == "up"
    assert shift.current > 0.3


@pytest.mark.parametrize("kind", KINDS)
def test_a_shift_below_min_change_is_forgotten(kind: Kind) -> None:
    """A 2-deviation shift is statistically obvious, but 20 units is below the 30 asked
    for: no alarm. The same series alarms without the floor."""
    rng = random.Random(9)
    xs = gauss(rng, 300, 100.0, 10.0) + gauss(rng, 1000, 120.0, 10.0)
    assert first_alarm(kind(DetectorParams(min_change=30.0)), xs) is None
    assert first_alarm(kind(DetectorParams(min_change=10.0)), xs) is not None


@pytest.mark.parametrize("kind", KINDS)
def test_direction_filter(kind: Kind) -> None:
    rng = random.Random(3)
    xs = gauss(rng, 300, 100.0, 10.0) + gauss(rng, 300, 60.0, 10.0)
    assert first_alarm(kind(DetectorParams(direction="up")), xs) is None
    got = first_alarm(kind(DetectorParams(direction="down")), xs)
    assert got is not None and got[1].direction == "down"


def test_nothing_is_judged_during_warmup() -> None:
    det = make_detector("cusum", DetectorParams(warmup=20))
    assert all(det.update(x) is None for x in [0.0] * 10 + [1000.0] * 10)


@pytest.mark.parametrize("kind", ["cusum", "page-hinkley"])
def test_reset_learns_the_new_level_as_baseline(kind: str) -> None:
    rng = random.Random(4)
    det = make_detector(kind, DetectorParams())
    assert first_alarm(det, gauss(rng, 200, 100.0, 5.0) + gauss(rng, 50, 200.0, 5.0))
    det.reset()
    assert first_alarm(det, gauss(rng, 5000, 200.0, 5.0)) is None


def test_constant_series_uses_the_spread_floor() -> None:
    """A perfectly steady signal has no spread; the floor keeps tiny wobbles quiet."""
    det = Cusum(DetectorParams(min_sd=0.15, min_change=math.log(1.3)))
    xs = [5.0] * 100 + [5.0 + (0.05 if i % 2 else -0.05) for i in range(5000)]
    assert first_alarm(det, xs) is None
    assert first_alarm(det, [5.0 + math.log(5)] * 10) is not None
