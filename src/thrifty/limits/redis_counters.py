""":class:`Counters` in Redis, so every gateway replica draws on the same budgets and rate
limits. Each of reserve, settle, release and usage is ONE Lua script (sent once, then called
by SHA), so a reservation spanning several limits is all-or-nothing under any concurrency.
Time is the caller's ``now``, never Redis ``TIME``; amounts are integers. What to do when
Redis is down is not this module's business: redis-py's errors reach the caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

from thrifty.errors import ConfigError
from thrifty.limits.decide import decide, merge_wants
from thrifty.limits.model import DEFAULT_RESERVATION_TTL_S, Limit, ReserveResult, window_bounds

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript
    from redis.typing import EncodableT

MAX_AMOUNT = 2**53
"""Lua numbers are doubles: below this every sum the scripts compare is exact."""

_KEEP_MARGIN_S = 60.0
"""Extra life for every key beyond the last moment its content can still matter."""

RECLAIM_BATCH = 200
"""Expired reservations freed per script call (~20 us each): a crashed replica's thousands
of holds are freed over several short calls, never in one that stalls Redis."""

_TOTAL_HOLD_KEEP_S = 30 * 86_400.0
"""How long an open hold on a "total" bucket (which never expires) waits to be reclaimed:
reclaim runs inside the next reserve or usage, so only a month with no traffic could leak it."""

# Frees the holds of up to RECLAIM_BATCH reservations whose expiry (the index score) is
# <= now; true if more may be left. ARGV[1] is now, ARGV[2] the reservation key prefix,
# ARGV[3] how long an expired reservation is kept so a late settle still records the money
# spent. Amounts travel as the strings Python wrote: Lua would print big numbers as
# 1.2e+15, and HINCRBY rejects "-0", hence the checks for '0'.
_LUA_RECLAIM = """
local function reclaim(index)
  local expired = redis.call('ZRANGEBYSCORE', index, '-inf', ARGV[1], 'LIMIT', 0, BATCH)
  for _, id in ipairs(expired) do
    local key = ARGV[2] .. id
    if redis.call('HGET', key, 'state') == 'held' then
      for i = 1, tonumber(redis.call('HGET', key, 'n')) do
        local h = redis.call('HMGET', key, 'k' .. i, 'a' .. i)
        if h[2] ~= '0' and redis.call('EXISTS', h[1]) == 1 then
          redis.call('HINCRBY', h[1], 'reserved', '-' .. h[2])
        end
      end
      redis.call('HSET', key, 'state', 'expired')
      redis.call('PEXPIRE', key, ARGV[3])
    end
  end
  if #expired > 0 then redis.call('ZREM', index, unpack(expired)) end
  return #expired == BATCH
end
local function used(bucket)
  local v = redis.call('HMGET', bucket, 'settled', 'reserved')
  return (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
end
""".replace("BATCH", str(RECLAIM_BATCH))

# KEYS: index, reservation, bucket 1..m. ARGV: now, reservation key prefix, grace ms,
# expires_at, reservation id, reservation ttl ms; then per want: amount, cap, bucket ttl ms
# ('' for none), limit id. Returns {1, used...} after holding everything, {0, used...}
# after holding nothing, {-1} if the id is still open, or {-2} to be called again: it
# does not fit yet but more expired holds wait to be freed. ``used`` is settled + reserved
# before this reservation, as the script saw it.
_LUA_RESERVE = _LUA_RECLAIM + """
local index, res = KEYS[1], KEYS[2]
local more = reclaim(index)
if redis.call('EXISTS', res) == 1 then return {-1} end
local m, fits, out = #KEYS - 2, 1, {1}
for i = 1, m do
  local b, u = 6 + 4 * (i - 1), used(KEYS[2 + i])
  out[i + 1] = u
  if u + tonumber(ARGV[b + 1]) > tonumber(ARGV[b + 2]) then fits = 0 end
end
if fits == 0 then
  if more then return {-2} end
  out[1] = 0
  return out
end
local rec = {'state', 'held', 'n', tostring(m)}
for i = 1, m do
  local b, bucket = 6 + 4 * (i - 1), KEYS[2 + i]
  redis.call('HINCRBY', bucket, 'reserved', ARGV[b + 1])
  if ARGV[b + 3] ~= '' then redis.call('PEXPIRE', bucket, ARGV[b + 3]) end
  for _, kv in ipairs({{'k', bucket}, {'a', ARGV[b + 1]}, {'l', ARGV[b + 4]}}) do
    rec[#rec + 1] = kv[1] .. i
    rec[#rec + 1] = kv[2]
  end
end
redis.call('HSET', res, unpack(rec))
redis.call('PEXPIRE', res, ARGV[6])
redis.call('ZADD', index, ARGV[4], ARGV[5])
if redis.call('PTTL', index) < tonumber(ARGV[6]) then redis.call('PEXPIRE', index, ARGV[6]) end
return out
"""

# KEYS: index, bucket 1..m. ARGV: now, reservation key prefix, grace ms.
# Returns {settled, reserved} per bucket after reclaiming expired reservations, or {-2} to
# be called again while more wait to be freed.
_LUA_USAGE = _LUA_RECLAIM + """
if reclaim(KEYS[1]) then return {-2} end
local out = {}
for i = 2, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'settled', 'reserved')
  out[#out + 1] = tonumber(v[1]) or 0
  out[#out + 1] = tonumber(v[2]) or 0
end
return out
"""

# KEYS: index, reservation. ARGV: reservation id, 'settle' | 'release', then pairs of limit
# id and actual amount. Returns 1 if it closed the reservation, 0 if none was open. A hold
# whose bucket is gone (its window long over) is skipped: recreating the key would leave
# it without a TTL. An expired reservation's room is free already: settle only records
# what was spent, release does nothing.
_LUA_FINISH = """
local state = redis.call('HGET', KEYS[2], 'state')
if not state then return 0 end
local actual = {}
for i = 3, #ARGV, 2 do actual[ARGV[i]] = ARGV[i + 1] end
for i = 1, tonumber(redis.call('HGET', KEYS[2], 'n')) do
  local h = redis.call('HMGET', KEYS[2], 'k' .. i, 'a' .. i, 'l' .. i)
  if redis.call('EXISTS', h[1]) == 1 then
    if state == 'held' and h[2] ~= '0' then
      redis.call('HINCRBY', h[1], 'reserved', '-' .. h[2])
    end
    local spent = actual[h[3]] or h[2]
    if ARGV[2] == 'settle' and spent ~= '0' then
      redis.call('HINCRBY', h[1], 'settled', spent)
    end
  end
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""


class RedisCounters:
    """:class:`Counters` shared through Redis by any number of gateway replicas.

    Keys: a hash ``{settled, reserved}`` per limit window at ``{prefix}{limit.id}:{start}``
    (TTL: the rest of the window + the reservation TTL + a margin, so a late settle still
    finds it; none for "total", which is the budget's record), a hash per open reservation
    at ``{prefix}reservation:{id}`` listing its holds, and ``{prefix}reservations``, its ids
    by expiry: reserve and usage first reclaim expired reservations (in batches, and none
    refuses while one is left), so a crashed replica's holds come back with no background
    job. On Redis Cluster give the prefix a
    hash tag (``{thrifty:limits}:``): the reclaim touches other reservations' keys.
    At most ``max_connections`` commands are in flight per replica; more wait for one.

        counters = RedisCounters("redis://127.0.0.1:6379/0")
        got = await counters.reserve("req-1", [(team_usd_day, 2_000_000)], clock.now())
        if got.ok:
            ...  # call the model
            await counters.settle("req-1", {team_usd_day.id: 1_234_567})
    """

    def __init__(self, redis_url: str, prefix: str = "thrifty:limits:",
                 reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
                 timeout_s: float = 2.0, *, max_connections: int = 64) -> None:
        try:
            from redis.asyncio import BlockingConnectionPool, Redis
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "limits.backend 'redis' needs the redis client: pip install 'thrifty[redis]'"
            ) from exc
        if not reservation_ttl_s > 0:
            raise ConfigError(f"reservation_ttl_s must be > 0, got {reservation_ttl_s!r}")
        self._prefix = prefix
        self._index = f"{prefix}reservations"
        self._reservation_prefix = f"{prefix}reservation:"
        self._ttl_s = float(reservation_ttl_s)
        self._grace_ms = _ms(self._ttl_s + _KEEP_MARGIN_S)
        # No I/O here: redis-py connects on the first command. A blocking pool makes a burst
        # of requests queue for a connection (within timeout_s) instead of failing at once.
        pool = BlockingConnectionPool.from_url(
            redis_url, max_connections=max_connections, timeout=timeout_s,
            decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._redis: Redis = Redis.from_pool(pool)
        self._reserve: AsyncScript = self._redis.register_script(_LUA_RESERVE)
        self._usage: AsyncScript = self._redis.register_script(_LUA_USAGE)
        self._finish: AsyncScript = self._redis.register_script(_LUA_FINISH)

    @property
    def index_key(self) -> str:
        return self._index

    def bucket_key(self, limit: Limit, window_start: float) -> str:
        return f"{self._prefix}{limit.id}:{_stamp(window_start)}"

    def reservation_key(self, reservation_id: str) -> str:
        return f"{self._reservation_prefix}{reservation_id}"

    async def reserve(
        self, reservation_id: str, wants: Sequence[tuple[Limit, int]], now: float
    ) -> ReserveResult:
        """Holds every wanted amount, or nothing (see :class:`Counters`). The same limit
        wanted twice is summed; an id that is still open raises ``ValueError``."""
        result, _ = await self.reserve_with_used(reservation_id, wants, now)
        return result

    async def reserve_with_used(
        self, reservation_id: str, wants: Sequence[tuple[Limit, int]], now: float
    ) -> tuple[ReserveResult, dict[str, int]]:
        """:meth:`reserve`, also returning what each wanted limit had used (limit id ->
        settled + reserved) at the instant the script decided, before this reservation:
        enough for ``x-ratelimit-remaining`` without another round trip."""
        merged = merge_wants(wants)
        if not merged:  # nothing to hold, nothing to settle: no reservation is recorded
            return decide(merged, {}, now), {}
        for limit, amount in merged:
            _check_amount(amount, f"amount wanted from {limit.id}")
            _check_amount(limit.amount, f"limit {limit.id} amount")
        bounds = [window_bounds(limit.window, now) for limit, _ in merged]
        keys = [self._index, self.reservation_key(reservation_id)]
        keys += [self.bucket_key(limit, bounds[i][0]) for i, (limit, _) in enumerate(merged)]
        bucket_ttls = [_bucket_ttl_ms(end, now, self._ttl_s) for _, end in bounds]
        hold_ms = max([self._grace_ms] + [
            _ms(_TOTAL_HOLD_KEEP_S) if ttl is None else ttl for ttl in bucket_ttls])
        args: list[EncodableT] = [repr(float(now)), self._reservation_prefix, self._grace_ms,
                                  repr(float(now) + self._ttl_s), reservation_id, hold_ms]
        for (limit, amount), ttl in zip(merged, bucket_ttls, strict=True):
            args += [str(amount), str(limit.amount), "" if ttl is None else ttl, limit.id]
        reply = [-2]
        while reply[0] == -2:
            reply = cast("list[int]", await self._reserve(keys=keys, args=args))
        if reply[0] == -1:
            raise ValueError(f"reservation id {reservation_id!r} is already in use")
        used = {limit.id: int(u) for (limit, _), u in zip(merged, reply[1:], strict=True)}
        # The script decided on the same integers; ``decide`` words the result (refusal,
        # retry-after, exact soft warnings) exactly as every other back end does.
        result = decide(merged, used, now)
        if result.ok != (reply[0] == 1):  # pragma: no cover - a bug, never a race
            raise RuntimeError(f"script and decide disagree on {reservation_id!r}: {reply}")
        return result, used

    async def settle(self, reservation_id: str, actual: Mapping[str, int]) -> None:
        """Moves each hold from reserved to settled in the bucket it was taken from, at the
        ``actual`` amount for its limit id (the held amount when the id is missing: never
        under-count). A reservation reclaimed after its expiry still records its spend for
        one more reservation TTL. Unknown or already closed ids do nothing."""
        args: list[EncodableT] = [reservation_id, "settle"]
        for limit_id, amount in actual.items():
            _check_amount(amount, f"actual amount for {limit_id}")
            args += [limit_id, str(amount)]
        await self._finish(keys=[self._index, self.reservation_key(reservation_id)], args=args)

    async def release(self, reservation_id: str) -> None:
        """Drops the holds of a request that failed before spending. Idempotent."""
        await self._finish(keys=[self._index, self.reservation_key(reservation_id)],
                           args=[reservation_id, "release"])

    async def usage(self, limits: Sequence[Limit], now: float) -> list[tuple[Limit, int, int]]:
        """(limit, settled, reserved) in each limit's current window, expired holds freed."""
        keys = [self._index]
        keys += [self.bucket_key(limit, window_bounds(limit.window, now)[0]) for limit in limits]
        args: list[EncodableT] = [repr(float(now)), self._reservation_prefix, self._grace_ms]
        reply = [-2]
        while reply[:1] == [-2]:
            reply = cast("list[int]", await self._usage(keys=keys, args=args))
        return [(limit, int(reply[2 * i]), int(reply[2 * i + 1]))
                for i, limit in enumerate(limits)]

    async def ping(self) -> bool:
        """Readiness: can this replica reach the shared counters?"""
        try:
            return bool(await self._redis.ping())
        except Exception:  # any failure means "not ready"
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()


def _check_amount(amount: int, what: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < MAX_AMOUNT:
        raise ValueError(f"{what} must be an integer in [0, 2**53), got {amount!r}")


def _bucket_ttl_ms(window_end: float, now: float, reservation_ttl_s: float) -> int | None:
    """Until the window ends, then as long as a reservation taken in it can still settle."""
    if math.isinf(window_end):
        return None
    return _ms(window_end - now + reservation_ttl_s + _KEEP_MARGIN_S)


def _stamp(window_start: float) -> str:
    return str(int(window_start)) if float(window_start).is_integer() else repr(window_start)


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
