"""The limits contract every counter back end follows: what a limit is, its windows, the
reservation results and the ``Counters`` Protocol (memory, SQLite and Redis implement it).

Owns the types and the window arithmetic only; it must not hold storage or decisions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Literal, Protocol

Resource = Literal["requests", "input_tokens", "output_tokens", "usd"]
Window = Literal["minute", "hour", "day", "month", "total"]
Scope = Literal["global", "team", "key", "model", "provider", "tag"]

DEFAULT_RESERVATION_TTL_S = 600.0
"""A reservation nobody settles or releases (its process crashed) frees its room after this."""
DEFAULT_RETAIN_S = 86_400.0
"""Past windows and expired reservations are kept this long, so a late settle still lands."""

_FIXED_WINDOW_S: dict[str, int] = {"minute": 60, "hour": 3_600, "day": 86_400}


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``amount`` of ``resource`` per ``window`` for one scope value (requests,
    tokens, or nano-USD: integers, so sums are exact)."""

    resource: Resource
    window: Window
    scope: Scope
    scope_value: str | None
    """The team, key, model, provider or tag it counts; ``None`` for global."""
    amount: int
    soft_ratio: float | None = None
    """Warn (never refuse) once settled + reserved passes this share of ``amount``."""
    id: str = field(init=False, repr=False, compare=False)
    """Stable across processes and restarts, e.g. ``team=research:usd:day``. It names the
    counter, so changing ``amount`` in config keeps the spend already counted. Computed
    once: the counters read it a dozen times per request."""
    soft_above: int | None = field(init=False, repr=False, compare=False)
    """``floor(soft_ratio x amount)``, exactly: an integer total crosses the soft limit when
    it is above this (computed once, not per request)."""

    def __post_init__(self) -> None:
        who = self.scope if self.scope_value is None else f"{self.scope}={self.scope_value}"
        object.__setattr__(self, "id", f"{who}:{self.resource}:{self.window}")
        soft = self.soft_ratio
        object.__setattr__(self, "soft_above", None if soft is None
                           else math.floor(Fraction(soft) * self.amount))


def window_bounds(window: Window, now: float) -> tuple[float, float]:
    """The UTC window ``[start, end)`` holding ``now``: aligned minutes, hours and days, the
    calendar month for ``month``, ``(0, inf)`` for ``total``.

    >>> window_bounds("hour", 7_250.0)
    (7200.0, 10800.0)
    """
    if window == "total":
        return 0.0, math.inf
    if window == "month":
        global _month  # a cache of a pure result
        month = _month  # read once: another thread may replace it meanwhile
        if not month[0] <= now < month[1]:  # calendar arithmetic costs ~2 us: once a month
            month = _month = _month_bounds(now)
        return month
    size = _FIXED_WINDOW_S[window]
    start = (now // size) * size
    return start, start + size


_month: tuple[float, float] = (math.inf, math.inf)
"""The last month ``window_bounds`` computed: a pure result, reused while ``now`` is in it."""


def _month_bounds(now: float) -> tuple[float, float]:
    # Whole seconds: fromtimestamp rounds to microseconds, which could carry a moment
    # just before midnight into the next month. Month starts are whole seconds anyway.
    moment = datetime.fromtimestamp(math.floor(now), UTC)
    first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year, month = (first.year + 1, 1) if first.month == 12 else (first.year, first.month + 1)
    return first.timestamp(), first.replace(year=year, month=month).timestamp()


# Hold and ReserveResult are built several times per request: not frozen, because a frozen
# dataclass's __init__ (object.__setattr__ per field) costs three times as much. Nothing
# changes them after decide builds them; treat them as values. (A NamedTuple builds faster
# than frozen but reads its fields slower than slots.)
@dataclass(slots=True)
class Hold:
    """One limit's share of a reservation."""

    limit: Limit
    amount: int
    window_start: float
    """The bucket it was taken from: settle lands there even after the window rolled over."""


@dataclass(frozen=True, slots=True)
class Refusal:
    limit: Limit
    used: int
    """Settled + reserved in the window when the reservation was refused."""
    requested: int
    retry_after_s: float | None
    """Window end - now for rate limits; ``None`` for ``total``, which never resets."""


@dataclass(slots=True)
class ReserveResult:
    ok: bool
    holds: tuple[Hold, ...]
    """Empty when refused: a reservation takes all of its limits or none."""
    refusal: Refusal | None
    warnings: tuple[Limit, ...]
    """Soft limits crossed: settled + reserved + requested > soft_ratio x amount."""


class Counters(Protocol):
    """Shared counters for limits. ``reserve`` is atomic across all the wanted limits;
    ``settle`` and ``release`` close a reservation exactly once (a second call does nothing);
    a reservation left open expires after a TTL, so a crashed process leaks no budget.

    >>> async def call(counters: Counters, wants: Sequence[tuple[Limit, int]]) -> None:
    ...     result = await counters.reserve("req-1", wants, now=1_700_000_000.0)
    ...     if not result.ok:
    ...         raise RuntimeError(result.refusal)   # the gateway answers 429
    ...     await counters.settle("req-1", {hold.limit.id: 1 for hold in result.holds})
    """

    async def reserve(
        self, reservation_id: str, wants: Sequence[tuple[Limit, int]], now: float
    ) -> ReserveResult:
        """If for every ``(limit, amount)`` settled + reserved + amount <= limit.amount in the
        limit's current window, hold every amount and remember the reservation; otherwise
        hold nothing and return the first refusal."""

    async def settle(self, reservation_id: str, actual: Mapping[str, int]) -> None:
        """Move each hold from reserved to settled in its own bucket, at the real amount
        (``actual``: limit id -> amount; more than held is recorded too: money spent is money
        spent). Unknown or already closed ids do nothing."""

    async def release(self, reservation_id: str) -> None:
        """Drop the holds: the request failed before spending. Idempotent."""

    async def usage(self, limits: Sequence[Limit], now: float) -> list[tuple[Limit, int, int]]:
        """``(limit, settled, reserved)`` in each limit's current window."""
