"""KeyCache TTLs and bounds on a fake clock, single-flight misses, and the request-path checks
``authenticate`` (401s) and ``authorize_model`` (403) with messages that never echo a key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from thrifty.core.clock import FakeClock
from thrifty.errors import AuthenticationFailed, PermissionDenied
from thrifty.keys.cache import KeyCache, authenticate, authorize_model, presented_key
from thrifty.keys.model import VirtualKey, new_secret
from thrifty.keys.sqlite_keys import SQLiteKeys


class GatedStore(SQLiteKeys):
    """An in-memory store whose plaintext lookups can be held at a gate or made to fail."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(":memory:", clock=clock)
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def get_by_plaintext(self, plaintext: str) -> VirtualKey | None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return await super().get_by_plaintext(plaintext)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(clock: FakeClock) -> AsyncIterator[GatedStore]:
    s = GatedStore(clock)
    yield s
    await s.close()


@pytest.fixture
def cache(store: GatedStore, clock: FakeClock) -> KeyCache:
    return KeyCache(store, clock=clock)


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


async def test_found_keys_are_cached_for_the_positive_ttl(store: GatedStore, cache: KeyCache,
                                                          clock: FakeClock) -> None:
    key, secret = await store.create("t")
    for _ in range(5):
        assert await cache.lookup(secret) == key
    assert cache.store_lookups == 1
    clock.advance(29.9)
    assert await cache.lookup(secret) == key
    assert cache.store_lookups == 1
    clock.advance(0.2)
    assert await cache.lookup(secret) == key
    assert cache.store_lookups == 2


async def test_unknown_keys_are_cached_for_the_negative_ttl(cache: KeyCache,
                                                            clock: FakeClock) -> None:
    secret = new_secret()
    assert await cache.lookup(secret) is None
    clock.advance(4.9)
    assert await cache.lookup(secret) is None
    assert cache.store_lookups == 1
    clock.advance(0.2)
    assert await cache.lookup(secret) is None
    assert cache.store_lookups == 2


async def test_malformed_keys_never_reach_the_store(cache: KeyCache) -> None:
    for junk in ("", "sk-live", "tk-" + "x" * 10, "tk-" + "!" * 43, "Bearer tk-abc"):
        assert await cache.lookup(junk) is None
    assert cache.store_lookups == 0


async def test_a_revocation_elsewhere_shows_within_the_ttl(store: GatedStore, cache: KeyCache,
                                                           clock: FakeClock) -> None:
    key, secret = await store.create("t")
    await authenticate(bearer(secret), cache, clock.now())
    await store.revoke(key.id)  # as another process would: this cache is not told
    clock.advance(10)
    assert (await authenticate(bearer(secret), cache, clock.now())).id == key.id
    clock.advance(20.1)
    with pytest.raises(AuthenticationFailed) as err:
        await authenticate(bearer(secret), cache, clock.now())
    assert err.value.code == "key_revoked"


async def test_forget_makes_a_change_visible_at_once(store: GatedStore, cache: KeyCache,
                                                     clock: FakeClock) -> None:
    key, old = await store.create("t")
    other, other_secret = await store.create("t")
    await cache.lookup(old)
    await cache.lookup(other_secret)
    await store.rotate(key.id)
    assert await cache.lookup(old) is not None  # stale until told or expired
    cache.forget(key.id)
    assert await cache.lookup(old) is None
    before = cache.store_lookups
    assert await cache.lookup(other_secret) == other  # other keys stay cached
    assert cache.store_lookups == before


async def test_the_cache_is_bounded_least_recently_used_first(store: GatedStore,
                                                              clock: FakeClock) -> None:
    cache = KeyCache(store, clock=clock, max_keys=3)
    secrets = [(await store.create("t"))[1] for _ in range(4)]
    for s in secrets[:3]:
        await cache.lookup(s)
    await cache.lookup(secrets[0])  # now the most recently used
    await cache.lookup(secrets[3])  # evicts secrets[1]
    assert cache.store_lookups == 4
    await cache.lookup(secrets[0])
    await cache.lookup(secrets[3])
    assert cache.store_lookups == 4
    await cache.lookup(secrets[1])
    assert cache.store_lookups == 5


async def test_a_spray_of_unknown_keys_cannot_evict_live_ones(store: GatedStore,
                                                              clock: FakeClock) -> None:
    cache = KeyCache(store, clock=clock, max_keys=10, max_unknown=5)
    _, live = await store.create("t")
    await cache.lookup(live)
    for _ in range(200):
        await cache.lookup(new_secret())
    before = cache.store_lookups
    assert await cache.lookup(live) is not None
    assert cache.store_lookups == before


async def test_concurrent_misses_share_one_store_query(store: GatedStore,
                                                       cache: KeyCache) -> None:
    key, secret = await store.create("t")
    store.gate = asyncio.Event()
    waiters = [asyncio.create_task(cache.lookup(secret)) for _ in range(20)]
    await asyncio.sleep(0)
    store.gate.set()
    assert await asyncio.gather(*waiters) == [key] * 20
    assert cache.store_lookups == 1


async def test_a_cancelled_waiter_does_not_cancel_the_others(store: GatedStore,
                                                             cache: KeyCache) -> None:
    key, secret = await store.create("t")
    store.gate = asyncio.Event()
    first = asyncio.create_task(cache.lookup(secret))
    second = asyncio.create_task(cache.lookup(secret))
    await asyncio.sleep(0)
    first.cancel()
    store.gate.set()
    assert await second == key
    assert first.cancelled()


async def test_store_failures_propagate_and_are_not_cached(store: GatedStore,
                                                           cache: KeyCache) -> None:
    key, secret = await store.create("t")
    store.fail = OSError("database is away")
    with pytest.raises(OSError, match="away"):
        await cache.lookup(secret)
    store.fail = None
    assert await cache.lookup(secret) == key


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": "Bearer tk-abc"}, "tk-abc"),
        ({"authorization": "bearer   tk-abc  "}, "tk-abc"),
        ({"x-api-key": "tk-abc"}, "tk-abc"),
        ({"authorization": "Basic dXNlcg=="}, None),
        ({"authorization": "Bearer "}, None),
        ({"x-api-key": ""}, None),
        ({}, None),
    ],
)
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected


def assert_401(err: pytest.ExceptionInfo[AuthenticationFailed], code: str, *secret: str) -> None:
    body = err.value.to_openai()["error"]
    assert err.value.status == 401
    assert body["type"] == "authentication_error" and body["code"] == code
    for s in secret:
        assert s not in body["message"] and s[3:11] not in body["message"]


async def test_authenticate_accepts_a_live_key(store: GatedStore, cache: KeyCache,
                                               clock: FakeClock) -> None:
    key, secret = await store.create("t")
    assert await authenticate(bearer(secret), cache, clock.now()) == key
    assert await authenticate({"x-api-key": secret}, cache, clock.now()) == key


async def test_authenticate_refuses_a_missing_key(cache: KeyCache, clock: FakeClock) -> None:
    with pytest.raises(AuthenticationFailed, match="Missing API key") as err:
        await authenticate({}, cache, clock.now())
    assert_401(err, "missing_api_key")


@pytest.mark.parametrize("make", [new_secret, lambda: "tk-typo", lambda: "sk-openai-key-123"])
async def test_authenticate_refuses_an_unknown_key(cache: KeyCache, clock: FakeClock,
                                                   make: Callable[[], str]) -> None:
    secret = make()
    with pytest.raises(AuthenticationFailed, match="Invalid API key") as err:
        await authenticate(bearer(secret), cache, clock.now())
    assert_401(err, "invalid_api_key", secret)


async def test_authenticate_refuses_a_revoked_key(store: GatedStore, cache: KeyCache,
                                                  clock: FakeClock) -> None:
    key, secret = await store.create("t")
    await store.revoke(key.id)
    with pytest.raises(AuthenticationFailed, match=f"{key.id} was revoked at 2023-") as err:
        await authenticate(bearer(secret), cache, clock.now())
    assert_401(err, "key_revoked", secret)


async def test_authenticate_refuses_an_expired_key_to_the_second(
    store: GatedStore, cache: KeyCache, clock: FakeClock
) -> None:
    key, secret = await store.create("t", expires_at=clock.now() + 60)
    assert await authenticate(bearer(secret), cache, clock.now() + 59.9) == key
    with pytest.raises(AuthenticationFailed, match=f"{key.id} expired at") as err:
        await authenticate(bearer(secret), cache, clock.now() + 60)  # cached, still exact
    assert_401(err, "key_expired", secret)
    assert cache.store_lookups == 1


async def test_authorize_model(store: GatedStore) -> None:
    anything, _ = await store.create("t")
    authorize_model(anything, "gpt-4o")
    limited, secret = await store.create("t", allowed_models=("cheap", "gpt-4o-mini"))
    authorize_model(limited, "cheap")
    authorize_model(limited, "gpt-4o-mini")
    with pytest.raises(PermissionDenied) as err:
        authorize_model(limited, "gpt-4o")
    body = err.value.to_openai()["error"]
    assert err.value.status == 403
    assert body == {
        "message": f"API key {limited.id} may not use model 'gpt-4o'; it may use: "
                   "cheap, gpt-4o-mini",
        "type": "permission_error",
        "param": "model",
        "code": "model_not_allowed",
    }
    assert secret[3:11] not in body["message"]
