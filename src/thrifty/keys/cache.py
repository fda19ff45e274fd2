"""The request path's view of virtual keys: ``KeyCache`` (a bounded TTL cache in front of a
``KeyStore``), ``authenticate`` (headers -> live key, or 401) and ``authorize_model`` (403).

Must not write to the store, and must never put a presented key into an error message or a
log: records are cached under the key's hash, and errors name the key id at most.

Freshness: a found key is cached ``positive_ttl_s`` (30 s), an unknown one ``negative_ttl_s``
(5 s). Expiry is exact (checked against ``now`` on every request); a revocation, rotation or
update made by another process is seen within ``positive_ttl_s``, one made through an admin
handler holding this cache at once (``forget``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeVar

from thrifty.core.clock import Clock, SystemClock
from thrifty.errors import AuthenticationFailed, PermissionDenied
from thrifty.keys.model import BudgetRule, VirtualKey, hash_key, iso, looks_like_key
from thrifty.keys.store import KeyStore

_V = TypeVar("_V")


class KeyCache:
    """Cached ``store.get_by_plaintext``. Unknown keys get a separate, smaller bound, so a
    client spraying random keys can evict only other misses, never the live keys; concurrent
    misses on one key share a single store query."""

    def __init__(
        self,
        store: KeyStore,
        *,
        clock: Clock | None = None,
        positive_ttl_s: float = 30.0,
        negative_ttl_s: float = 5.0,
        max_keys: int = 10_000,
        max_unknown: int = 1_000,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.positive_ttl_s = positive_ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.max_keys = max_keys
        self.max_unknown = max_unknown
        self.store_lookups = 0
        """How many lookups reached the store (for metrics and tests)."""
        self._found: OrderedDict[str, tuple[float, VirtualKey]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[VirtualKey | None]] = {}
        self._teams: dict[str, tuple[float, tuple[BudgetRule, ...]]] = {}

    async def team_budgets(self, team: str) -> tuple[BudgetRule, ...]:
        """A team's budgets, cached like positive key lookups (changes made through this
        process's admin API apply at once; other processes see them within the TTL)."""
        now = self.clock.now()
        hit = self._teams.get(team)
        if hit is not None and hit[0] > now:
            return hit[1]
        budgets = await self.store.team_budgets(team)
        if len(self._teams) >= self.max_keys:
            self._teams.clear()
        self._teams[team] = (now + self.positive_ttl_s, budgets)
        return budgets

    def forget_team(self, team: str) -> None:
        self._teams.pop(team, None)

    async def lookup(self, plaintext: str) -> VirtualKey | None:
        """The stored record for ``plaintext`` (revoked and expired included), or ``None``."""
        if not looks_like_key(plaintext):
            return None  # malformed: no cache slot, no query
        digest = hash_key(plaintext)
        now = self.clock.monotonic()
        found = self._found.get(digest)
        if found is not None:
            if found[0] > now:
                self._found.move_to_end(digest)
                return found[1]
            del self._found[digest]
        unknown_until = self._unknown.get(digest)
        if unknown_until is not None:
            if unknown_until > now:
                return None
            del self._unknown[digest]
        task = self._inflight.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._load(plaintext, digest))
            self._inflight[digest] = task
            task.add_done_callback(lambda t: self._settled(digest, t))
        # A caller cancelled mid-lookup must not cancel the query the others are waiting on.
        return await asyncio.shield(task)

    def forget(self, key_id: str) -> None:
        """Drop the cached record of ``key_id`` (after revoking, rotating or updating it)."""
        for digest in [d for d, (_, key) in self._found.items() if key.id == key_id]:
            del self._found[digest]

    def clear(self) -> None:
        self._found.clear()
        self._unknown.clear()

    async def _load(self, plaintext: str, digest: str) -> VirtualKey | None:
        self.store_lookups += 1
        key = await self.store.get_by_plaintext(plaintext)
        now = self.clock.monotonic()
        if key is None:
            self._unknown[digest] = now + self.negative_ttl_s
            _trim(self._unknown, self.max_unknown)
        else:
            self._found[digest] = (now + self.positive_ttl_s, key)
            _trim(self._found, self.max_keys)
        return key

    def _settled(self, digest: str, task: asyncio.Future[VirtualKey | None]) -> None:
        self._inflight.pop(digest, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter was cancelled


def _trim(entries: OrderedDict[str, _V], limit: int) -> None:
    while len(entries) > limit:
        entries.popitem(last=False)  # least recently used first


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: ``Authorization: Bearer <key>`` or, as Anthropic clients send
    it, ``x-api-key``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("x-api-key") or None


async def authenticate(headers: Mapping[str, str], cache: KeyCache, now: float) -> VirtualKey:
    """The live virtual key the request presents; ``AuthenticationFailed`` (401) if it
    presents none, an unknown one, or a revoked or expired one."""
    presented = presented_key(headers)
    if presented is None:
        raise AuthenticationFailed(
            "Missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    key = await cache.lookup(presented)
    if key is None:
        raise AuthenticationFailed(
            "Invalid API key: no such key (check it was copied whole and not rotated since)"
        )
    status = key.status(now)
    if status == "revoked":
        raise AuthenticationFailed(
            f"API key {key.id} was revoked at {iso(key.revoked_at)}; ask an admin for a new "
            "key", code="key_revoked")
    if status == "expired":
        raise AuthenticationFailed(
            f"API key {key.id} expired at {iso(key.expires_at)}; ask an admin to extend it "
            "or issue a new key", code="key_expired")
    return key


def authorize_model(key: VirtualKey, model: str) -> None:
    """``PermissionDenied`` (403) unless ``key`` may request ``model``. The check is on the
    name the client asked for (a model or an alias); the targets an alias routes to are the
    gateway's choice and need no permission of their own."""
    if key.allows(model):
        return
    allowed = ", ".join(key.allowed_models)
    raise PermissionDenied(
        f"API key {key.id} may not use model '{model}'; it may use: {allowed}",
        param="model",
        code="model_not_allowed",
    )
