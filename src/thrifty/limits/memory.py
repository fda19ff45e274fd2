"""``MemoryCounters``: limit counters inside one process (one gateway worker, tests, the demo).

Safe under asyncio because no method awaits between reading and writing its state; it must
not be shared by several processes or event-loop threads (use the SQLite or Redis counters).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from thrifty.limits.decide import decide, merge_wants, settle_amount
from thrifty.limits.model import (
    DEFAULT_RESERVATION_TTL_S,
    DEFAULT_RETAIN_S,
    Hold,
    Limit,
    ReserveResult,
    window_bounds,
)

_GC_EVERY_S = 60.0


@dataclass(slots=True)
class _Bucket:
    start: float
    end: float
    settled: int = 0
    reserved: int = 0
    forgotten: bool = False
    """Dropped from the counters (an old window): whoever still points at it looks again."""


@dataclass(slots=True)
class _Reservation:
    reservation_id: str
    holds: tuple[Hold, ...]
    buckets: Sequence[_Bucket]
    """Each hold's bucket, so closing it needs no lookup (unless the bucket was forgotten)."""
    expires_at: float
    expired: bool = False
    """Expired: its room is free again, but a late settle still records what was spent."""


class MemoryCounters:
    """The ``Counters`` contract in dictionaries.

    ``ttl_s``: an open reservation frees its room after this. ``retain_s`` (>= ``ttl_s``):
    how long past windows and expired reservations are kept for late settles.
    """

    def __init__(
        self, *, ttl_s: float = DEFAULT_RESERVATION_TTL_S, retain_s: float = DEFAULT_RETAIN_S
    ) -> None:
        if not 0 < ttl_s <= retain_s:
            raise ValueError(f"need 0 < ttl_s <= retain_s, got ttl_s={ttl_s} retain_s={retain_s}")
        self._ttl_s = ttl_s
        self._retain_s = retain_s
        self._buckets: dict[tuple[str, float], _Bucket] = {}
        # limit id -> its bucket in the window reserved from last: while ``now`` is still in
        # that window, reserve skips the window arithmetic and the (id, start) lookup.
        self._current: dict[str, _Bucket] = {}
        self._open: dict[str, _Reservation] = {}
        # (when, tie-break, reservation): when it expires, then when its tombstone goes.
        self._timers: list[tuple[float, int, _Reservation]] = []
        self._seq = itertools.count()
        self._next_gc = -float("inf")
        self._dead = 0  # timers of reservations already settled or released

    async def reserve(
        self, reservation_id: str, wants: Sequence[tuple[Limit, int]], now: float
    ) -> ReserveResult:
        return self.reserve_nowait(reservation_id, wants, now)

    def reserve_nowait(
        self, reservation_id: str, wants: Sequence[tuple[Limit, int]], now: float
    ) -> ReserveResult:
        """``reserve`` without a coroutine (as ``settle_nowait``): it never waits, and the
        gateway reserves for every request."""
        merged = merge_wants(wants)
        timers = self._timers
        if (timers and timers[0][0] <= now) or now >= self._next_gc:  # else nothing to do
            self._sweep(now)
        if reservation_id in self._open:
            raise ValueError(f"reservation id {reservation_id!r} is already in use")
        current = self._current
        buckets = []
        used = {}
        for limit, _ in merged:
            bucket = current.get(limit.id)
            if bucket is None or not bucket.start <= now < bucket.end:
                bucket = current[limit.id] = self._bucket(
                    limit, window_bounds(limit.window, now)[0])
            buckets.append(bucket)
            used[limit.id] = bucket.settled + bucket.reserved
        result = decide(merged, used, now)
        if result.ok and result.holds:  # nothing held, nothing to settle (as in SQLite)
            # decide made one hold per merged want, in order, in the same windows
            # (enumerate, not zip: zip's strict= keyword is parsed slowly on every call)
            for i, hold in enumerate(result.holds):
                buckets[i].reserved += hold.amount
            held = _Reservation(reservation_id, result.holds, buckets, now + self._ttl_s)
            self._open[reservation_id] = held
            heapq.heappush(timers, (held.expires_at, next(self._seq), held))
        return result

    async def settle(self, reservation_id: str, actual: Mapping[str, int]) -> None:
        self.settle_nowait(reservation_id, actual)

    def settle_nowait(self, reservation_id: str, actual: Mapping[str, int]) -> None:
        """``settle`` without a coroutine: nothing here waits, and the gateway settles from
        sync code, where a task per request would cost more than the settle itself."""
        held = self._open.get(reservation_id)
        if held is None:
            return
        # Validate every amount before anything changes: held amounts are never negative,
        # so only a negative actual one can fail (a plain loop: min() costs more).
        for amount in actual.values():
            if amount < 0:  # if it is one of ours, settle_amount says which, and how
                for h in held.holds:
                    settle_amount(h.limit.id, h.amount, actual)
                break
        del self._open[reservation_id]
        holds, buckets, expired = held.holds, held.buckets, held.expired
        self._forget_timer(held)
        for i, hold in enumerate(holds):
            bucket = buckets[i]
            if bucket.forgotten:  # its window was forgotten meanwhile: a late settle lands
                bucket = self._bucket(hold.limit, hold.window_start)
            if not expired:  # an expired reservation's room is free already
                bucket.reserved -= hold.amount
            bucket.settled += actual.get(hold.limit.id, hold.amount)

    async def release(self, reservation_id: str) -> None:
        held = self._open.pop(reservation_id, None)
        if held is None:
            return
        if not held.expired:
            _unhold(held)
        self._forget_timer(held)

    async def usage(self, limits: Sequence[Limit], now: float) -> list[tuple[Limit, int, int]]:
        self._sweep(now)
        out = []
        for limit in limits:
            start, _ = window_bounds(limit.window, now)
            bucket = self._buckets.get((limit.id, start))
            settled, reserved = (0, 0) if bucket is None else (bucket.settled, bucket.reserved)
            out.append((limit, settled, reserved))
        return out

    def _forget_timer(self, held: _Reservation) -> None:
        """A finished reservation's timer is dead weight until it would fire: its holds are
        dropped now (fewer objects for the garbage collector to walk), and once the dead
        outnumber the live, the heap is rebuilt from the live ones (amortised O(1) a
        request), so memory does not grow with the request rate times the hold timeout."""
        held.holds, held.buckets = (), ()
        self._dead += 1
        if self._dead > len(self._open) + 1024:
            self._timers = [t for t in self._timers if self._open.get(t[2].reservation_id)
                            is t[2]]
            heapq.heapify(self._timers)
            self._dead = 0

    def _bucket(self, limit: Limit, window_start: float) -> _Bucket:
        key = (limit.id, window_start)
        bucket = self._buckets.get(key)
        if bucket is None:
            _, end = window_bounds(limit.window, window_start)
            bucket = self._buckets[key] = _Bucket(window_start, end)
        return bucket

    def _sweep(self, now: float) -> None:
        """Expire overdue reservations, forget old tombstones, and now and then old windows."""
        while self._timers and self._timers[0][0] <= now:
            _, _, held = heapq.heappop(self._timers)
            if self._open.get(held.reservation_id) is not held:
                continue  # settled or released already
            if held.expired:
                del self._open[held.reservation_id]
                continue
            held.expired = True
            _unhold(held)
            forget_at = held.expires_at + self._retain_s
            heapq.heappush(self._timers, (forget_at, next(self._seq), held))
        if now >= self._next_gc:
            self._next_gc = now + _GC_EVERY_S
            # A bucket still holding room belongs to a live reservation: keep it.
            old = [
                key for key, b in self._buckets.items()
                if b.end + self._retain_s <= now and b.reserved == 0
            ]
            for key in old:
                self._buckets.pop(key).forgotten = True
            if old:  # a clock set back could otherwise find a forgotten bucket current
                self._current.clear()


def _unhold(held: _Reservation) -> None:
    """Give back the room of a reservation that has not expired. Its buckets are still
    counted: the collector keeps a bucket holding room, and one held at zero cannot be
    old enough to forget before the reservation expires (ttl <= retention)."""
    for i, hold in enumerate(held.holds):
        held.buckets[i].reserved -= hold.amount
