""":class:`HealthStore` in Redis, so every gateway replica agrees on which deployment is down.
Each breaker is a hash; each transition runs in one Lua script (sent once, then called by
SHA), so two replicas can never both take the last half-open probe. The scripts mirror
``breaker.py`` step for step (a parity test replays random histories through both) and take
the time from the caller's clock, never Redis ``TIME``. Every key carries a TTL.
Needs the ``redis`` extra: ``pip install 'thrifty[redis]'``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, cast

from thrifty.core.clock import Clock
from thrifty.errors import ConfigError
from thrifty.resilience.breaker import CLOSED, BreakerConfig, BreakerState, ErrorClass, Phase
from thrifty.resilience.headroom import Headroom
from thrifty.resilience.health import DeploymentHealth, MemoryHealth, deployment_health

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript
    from redis.typing import EncodableT, FieldT

log = logging.getLogger(__name__)
T = TypeVar("T")

_KEEP_MARGIN_S = 60.0
"""Extra life for every key beyond the longest time its content can still matter."""

_FIELDS = ("state", "failures", "opened_at", "cooldown_s", "opens", "probes", "probe_at",
           "win_start", "win_req", "win_fail", "prev_req", "prev_fail", "last_error")

# Shared by the three scripts. Numbers are written with %.17g so a float read back in Python
# is the very float Lua computed (Redis' own conversion keeps only 14 digits).
_LUA_COMMON = """
local FIELDS = {'state','failures','opened_at','cooldown_s','opens','probes','probe_at',
                'win_start','win_req','win_fail','prev_req','prev_fail','last_error'}
local function load(key)
  local v = redis.call('HMGET', key, unpack(FIELDS))
  local s = {state = v[1] or 'closed', last_error = v[13] or ''}
  for i = 2, 12 do s[FIELDS[i]] = tonumber(v[i]) or 0 end
  return s
end
local function save(s, now, keep_s, index_ttl_ms, member)
  local args = {}
  for i = 1, 13 do
    local val = s[FIELDS[i]]
    if type(val) == 'number' then val = string.format('%.17g', val) end
    args[#args + 1] = FIELDS[i]
    args[#args + 1] = val
  end
  redis.call('HSET', KEYS[1], unpack(args))
  local ttl = keep_s
  if s.state == 'open' then ttl = math.max(ttl, s.opened_at + s.cooldown_s - now + keep_s) end
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
  redis.call('ZADD', KEYS[2], string.format('%.17g', now), member)
  redis.call('PEXPIRE', KEYS[2], index_ttl_ms)
end
local function roll(s, now, window)
  local elapsed = now - s.win_start
  if elapsed < window then return end
  if elapsed < 2 * window then
    s.prev_req = s.win_req
    s.prev_fail = s.win_fail
    s.win_start = s.win_start + window
  else
    s.prev_req = 0
    s.prev_fail = 0
    s.win_start = now
  end
  s.win_req = 0
  s.win_fail = 0
end
"""

# KEYS: breaker, index. ARGV: now, half_open_probes, probe_timeout_s, keep_s, index_ttl_ms,
# member. Returns 1 to allow, 0 to refuse.
_LUA_ALLOW = _LUA_COMMON + """
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'closed' then return 1 end
local now = tonumber(ARGV[1])
local s = load(KEYS[1])
if s.state == 'open' then
  if now < s.opened_at + s.cooldown_s then return 0 end
  s.probes = 1
elseif s.probes < tonumber(ARGV[2]) then
  s.probes = s.probes + 1
elseif now - s.probe_at >= tonumber(ARGV[3]) then
  s.probes = 1
else
  return 0
end
s.state = 'half_open'
s.probe_at = now
save(s, now, tonumber(ARGV[4]), ARGV[5], ARGV[6])
return 1
"""

# KEYS: breaker, index. ARGV: now, window_s, keep_s, index_ttl_ms, member.
_LUA_SUCCESS = _LUA_COMMON + """
local now = tonumber(ARGV[1])
local s = load(KEYS[1])
if s.state == 'open' then return 0 end
if s.state == 'half_open' then
  s = {state = 'closed', failures = 0, opened_at = 0, cooldown_s = 0, opens = 0, probes = 0,
       probe_at = 0, win_start = now, win_req = 0, win_fail = 0, prev_req = 0, prev_fail = 0,
       last_error = s.last_error}
else
  roll(s, now, tonumber(ARGV[2]))
  s.failures = 0
  s.probes = 0
  s.win_req = s.win_req + 1
end
save(s, now, tonumber(ARGV[3]), ARGV[4], ARGV[5])
return 1
"""

# KEYS: breaker, index. ARGV: now, error_class, retry_after ('' for none), keep_s,
# index_ttl_ms, member, then the config: window_s, failure_threshold, min_requests,
# error_rate, open_on_retry_after, base_cooldown_s, cooldown_growth, max_cooldown_s,
# rate_limit_cooldown_s, auth_cooldown_s, max_retry_after_s.
_LUA_FAILURE = _LUA_COMMON + """
local now, cls, ra = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local window, threshold, min_req = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local rate, on_ra = tonumber(ARGV[10]), ARGV[11] == '1'
local base_c, growth, max_c = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local rl_c, auth_c, max_ra = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local function cooldown(opens)
  local base
  if cls == 'auth' then base = auth_c
  elseif cls == 'rate_limit' then base = math.min(max_c, rl_c * growth ^ (opens - 1))
  else base = math.min(max_c, base_c * growth ^ (opens - 1)) end
  if ra ~= nil and ra > 0 then return math.max(base, math.min(ra, max_ra)) end
  return base
end
local function open(s, opens)
  s.state = 'open'
  s.opened_at = now
  s.cooldown_s = cooldown(opens)
  s.opens = opens
  s.probes = 0
  s.last_error = cls
end
if cls == 'client' then return 0 end
local s = load(KEYS[1])
if s.state == 'half_open' then
  open(s, s.opens + 1)
elseif s.state == 'open' then
  if ra == nil or ra <= 0 then return 0 end
  local till = now + math.min(ra, max_ra)
  if till <= s.opened_at + s.cooldown_s then return 0 end
  s.cooldown_s = till - s.opened_at
  s.last_error = cls
else
  roll(s, now, window)
  s.win_req = s.win_req + 1
  s.win_fail = s.win_fail + 1
  s.failures = s.failures + 1
  s.probes = 0
  s.last_error = cls
  local weight = math.min(1, math.max(0, 1 - (now - s.win_start) / window))
  local total = s.prev_req * weight + s.win_req
  local bad = s.prev_fail * weight + s.win_fail
  if s.failures >= threshold or (total >= min_req and bad >= rate * total)
      or (cls == 'rate_limit' and ra ~= nil and ra > 0 and on_ra) then
    open(s, s.opens + 1)
  end
end
save(s, now, tonumber(ARGV[4]), ARGV[5], ARGV[6])
return 1
"""


class RedisHealth:
    """:class:`HealthStore` shared through Redis. ``now`` is the caller's ``clock.now()``
    (wall clock, so replicas agree); keys are ``{prefix}breaker:{key}``,
    ``{prefix}room:{key}`` and the index ``{prefix}index``. On Redis Cluster give the
    prefix a hash tag (``{thrifty:health}:``) so a script's keys share a slot.

    If Redis cannot be reached within ``timeout_s`` the replica carries on with breakers of
    its own (a :class:`MemoryHealth`) until Redis answers again, logging once per outage:
    losing the shared state must not take the gateway down. ``ping()`` tells readiness."""

    def __init__(self, redis_url: str, cfg: BreakerConfig, clock: Clock,
                 prefix: str = "thrifty:health:", *, timeout_s: float = 0.5) -> None:
        try:
            from redis.asyncio import BlockingConnectionPool, Redis
            from redis.exceptions import RedisError
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "health.backend 'redis' needs the redis client: pip install 'thrifty[redis]'"
            ) from exc
        self._cfg = cfg
        self._clock = clock
        self._prefix = prefix
        self._index = f"{prefix}index"
        # No I/O here: redis-py connects on the first command. A blocking pool makes a burst
        # of attempts queue for a connection instead of failing (which would read as an
        # outage and switch this replica to its local breakers).
        pool = BlockingConnectionPool.from_url(
            redis_url, max_connections=64, timeout=timeout_s, decode_responses=True,
            socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._redis: Redis = Redis.from_pool(pool)
        self._allow: AsyncScript = self._redis.register_script(_LUA_ALLOW)
        self._success: AsyncScript = self._redis.register_script(_LUA_SUCCESS)
        self._failure: AsyncScript = self._redis.register_script(_LUA_FAILURE)
        self._keep_s = max(2 * cfg.window_s, cfg.probe_timeout_s) + _KEEP_MARGIN_S
        longest = max(cfg.max_cooldown_s, cfg.auth_cooldown_s, cfg.max_retry_after_s)
        self._index_ttl_ms = math.ceil((longest + self._keep_s) * 1000)
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._local = MemoryHealth(cfg, clock)
        self._down = False

    def breaker_key(self, key: str) -> str:
        return f"{self._prefix}breaker:{key}"

    def headroom_key(self, key: str) -> str:
        return f"{self._prefix}room:{key}"

    async def allow(self, key: str) -> bool:
        args = (self._clock.now(), self._cfg.half_open_probes, self._cfg.probe_timeout_s,
                self._keep_s, self._index_ttl_ms, key)
        return bool(await self._shared(
            self._allow(keys=[self.breaker_key(key), self._index], args=args),
            lambda: self._local.allow(key)))

    async def record_success(self, key: str) -> None:
        args = (self._clock.now(), self._cfg.window_s, self._keep_s, self._index_ttl_ms, key)
        await self._shared(self._success(keys=[self.breaker_key(key), self._index], args=args),
                           lambda: self._local.record_success(key))

    async def record_failure(
        self, key: str, error_class: ErrorClass, retry_after: float | None
    ) -> None:
        if error_class is ErrorClass.CLIENT:
            return  # never counts: spare the round trip
        c = self._cfg
        args = (
            self._clock.now(), error_class.value, "" if retry_after is None else retry_after,
            self._keep_s, self._index_ttl_ms, key,
            c.window_s, c.failure_threshold, c.min_requests, c.error_rate,
            1 if c.open_on_retry_after else 0, c.base_cooldown_s, c.cooldown_growth,
            c.max_cooldown_s, c.rate_limit_cooldown_s, c.auth_cooldown_s, c.max_retry_after_s,
        )
        await self._shared(self._failure(keys=[self.breaker_key(key), self._index], args=args),
                           lambda: self._local.record_failure(key, error_class, retry_after))

    async def record_headroom(self, key: str, headroom: Headroom) -> None:
        """Replaces the deployment's headroom; the key lives until its counts reset."""
        await self._shared(self._write_headroom(key, headroom),
                           lambda: self._local.record_headroom(key, headroom))

    async def breaker_state(self, key: str) -> BreakerState:
        return await self._shared(self._read_state(key), lambda: self._local.breaker_state(key))

    async def snapshot(self) -> dict[str, DeploymentHealth]:
        return await self._shared(self._read_all(), self._local.snapshot)

    async def ping(self) -> bool:
        """Readiness: can this replica reach the shared state?"""
        try:
            return bool(await self._redis.ping())
        except self._errors:
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()

    # -- internals ---------------------------------------------------------------------

    async def _shared(self, call: Awaitable[T], local: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await call
        except self._errors as exc:
            if not self._down:
                self._down = True
                log.warning("health store: Redis unreachable (%s); breakers are per replica "
                            "until it answers again", type(exc).__name__)
            return await local()
        if self._down:
            self._down = False
            log.warning("health store: Redis answers again; breakers are shared")
        return result

    async def _write_headroom(self, key: str, headroom: Headroom) -> None:
        now = self._clock.now()
        fields = _headroom_fields(headroom)
        resets = [t for t in (headroom.reset_at, headroom.tokens_reset_at) if t is not None]
        ttl_s = (max(resets) - now if resets else 0.0) + _KEEP_MARGIN_S
        room = self.headroom_key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(room)
            if fields:
                pipe.hset(room, mapping=fields)
                pipe.pexpire(room, max(1, math.ceil(ttl_s * 1000)))
            pipe.zadd(self._index, {key: now})
            pipe.pexpire(self._index, self._index_ttl_ms)
            await pipe.execute()

    async def _read_state(self, key: str) -> BreakerState:
        raw = await self._redis.hgetall(self.breaker_key(key))
        # decode_responses=True: Redis hands back str, whatever the stubs allow for
        return _decode_state(cast("dict[str, str]", raw))

    async def _read_all(self) -> dict[str, DeploymentHealth]:
        now = self._clock.now()
        await self._redis.zremrangebyscore(self._index, "-inf", now - self._index_ttl_ms / 1000)
        members = cast("list[str]", await self._redis.zrange(self._index, 0, -1))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in members:
                pipe.hgetall(self.breaker_key(key))
                pipe.hgetall(self.headroom_key(key))
            raw: list[dict[str, str]] = await pipe.execute()
        out: dict[str, DeploymentHealth] = {}
        for i, key in enumerate(members):
            state_raw, room_raw = raw[2 * i], raw[2 * i + 1]
            if state_raw or room_raw:
                out[key] = deployment_health(_decode_state(state_raw), _decode_headroom(room_raw),
                                             now, self._cfg)
        return out


def _decode_state(raw: dict[str, str]) -> BreakerState:
    if not raw:
        return CLOSED

    def num(name: str) -> float:
        return float(raw.get(name) or 0)

    last = raw.get("last_error") or None
    return BreakerState(
        state=Phase(raw.get("state") or "closed"),
        failures=int(num("failures")), opened_at=num("opened_at"), cooldown_s=num("cooldown_s"),
        opens=int(num("opens")), probes_in_flight=int(num("probes")), probe_at=num("probe_at"),
        window_start=num("win_start"), window_requests=int(num("win_req")),
        window_failures=int(num("win_fail")), prev_requests=int(num("prev_req")),
        prev_failures=int(num("prev_fail")),
        last_error=ErrorClass(last) if last is not None else None,
    )


def _headroom_fields(h: Headroom) -> dict[FieldT, EncodableT]:
    values = {"requests_remaining": h.requests_remaining, "tokens_remaining": h.tokens_remaining,
              "reset_at": h.reset_at, "tokens_reset_at": h.tokens_reset_at}
    return {name: repr(v) for name, v in values.items() if v is not None}


def _decode_headroom(raw: dict[str, str]) -> Headroom | None:
    if not raw:
        return None

    def opt(name: str) -> float | None:
        v = raw.get(name)
        return float(v) if v is not None else None

    req, tok = opt("requests_remaining"), opt("tokens_remaining")
    return Headroom(
        requests_remaining=int(req) if req is not None else None,
        tokens_remaining=int(tok) if tok is not None else None,
        reset_at=opt("reset_at"), tokens_reset_at=opt("tokens_reset_at"),
    )
