"""The KeyStore contract, run against every back end: SQLite (a temp file) and PostgreSQL (the
real server on 127.0.0.1:5432, in a schema made for the test and dropped after)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from thrifty.core.clock import FakeClock
from thrifty.errors import InvalidRequest, NotFound
from thrifty.keys.model import KeyPatch, hash_key
from thrifty.keys.postgres_keys import PostgresKeys
from thrifty.keys.sqlite_keys import SQLiteKeys
from thrifty.keys.store import KeyStore

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_listening() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


def drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path,
                clock: FakeClock) -> AsyncIterator[KeyStore]:
    if request.param == "sqlite":
        s: KeyStore = SQLiteKeys(tmp_path / "keys.db", clock=clock)
        yield s
        await s.close()
        return
    if not postgres_listening():
        pytest.skip("nothing listens on 127.0.0.1:5432, so the PostgreSQL store is not tested")
    schema = f"thrifty_keys_test_{uuid.uuid4().hex[:12]}"
    pg = PostgresKeys(PG_DSN, schema=schema, clock=clock)
    try:
        yield pg
    finally:
        await pg.close()
        drop_schema(schema)


async def test_create_returns_the_secret_once_and_stores_its_hash(store: KeyStore,
                                                                  clock: FakeClock) -> None:
    key, secret = await store.create(
        "search", name="ci", allowed_models=("cheap", "gpt-4o-mini"), tags=("prod",),
        metadata={"owner": "ana"}, expires_at=clock.now() + 3600,
        budgets=[{"resource": "cost_usd", "window": "day", "limit": "5.00"}])
    assert secret.startswith("tk-") and len(secret) == 46
    assert key.hash == hash_key(secret) and secret not in repr(key)
    assert key.prefix == secret[:7] and key.display == secret[:7] + "…"
    assert key.id.startswith("key_")
    assert key.created_at == clock.now() and key.revoked_at is None
    got = await store.get(key.id)
    assert got == key
    assert got.allowed_models == ("cheap", "gpt-4o-mini") and got.tags == ("prod",)
    assert got.metadata == {"owner": "ana"}
    assert got.budgets == ({"resource": "cost_usd", "window": "day", "limit": "5.00"},)


async def test_lookup_by_plaintext(store: KeyStore) -> None:
    key, secret = await store.create("search")
    other, _ = await store.create("search")
    assert await store.get_by_plaintext(secret) == key
    assert await store.get_by_plaintext(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert await store.get_by_plaintext("tk-short") is None
    assert await store.get_by_plaintext("sk-" + secret[3:]) is None
    assert (await store.get_by_plaintext(secret)) != other


async def test_two_keys_never_share_a_secret_or_id(store: KeyStore) -> None:
    made = [await store.create("t") for _ in range(20)]
    assert len({k.id for k, _ in made}) == 20
    assert len({s for _, s in made}) == 20


async def test_rotate_invalidates_the_old_secret_and_keeps_the_settings(store: KeyStore) -> None:
    key, old = await store.create("search", name="ci", allowed_models=("cheap",))
    rotated, new = await store.rotate(key.id)
    assert new != old
    assert rotated.id == key.id and rotated.allowed_models == ("cheap",)
    assert rotated.name == "ci" and rotated.created_at == key.created_at
    assert rotated.hash == hash_key(new) and rotated.prefix == new[:7]
    assert await store.get_by_plaintext(old) is None
    assert await store.get_by_plaintext(new) == rotated
    assert await store.get(key.id) == rotated


async def test_revoke_keeps_the_record_and_the_first_time(store: KeyStore,
                                                          clock: FakeClock) -> None:
    key, secret = await store.create("search")
    clock.advance(10)
    revoked = await store.revoke(key.id)
    assert revoked.revoked_at == clock.now()
    assert revoked.status(clock.now()) == "revoked"
    clock.advance(10)
    again = await store.revoke(key.id)
    assert again.revoked_at == revoked.revoked_at
    found = await store.get_by_plaintext(secret)
    assert found is not None and found.revoked_at == revoked.revoked_at


async def test_revoked_keys_cannot_be_rotated_or_updated(store: KeyStore) -> None:
    key, _ = await store.create("search")
    await store.revoke(key.id)
    with pytest.raises(InvalidRequest, match="revoked") as rot:
        await store.rotate(key.id)
    assert rot.value.code == "key_revoked"
    with pytest.raises(InvalidRequest, match="revoked"):
        await store.update(key.id, KeyPatch(name="x"))


async def test_unknown_ids_are_not_found(store: KeyStore) -> None:
    for call in (store.get, store.rotate, store.revoke):
        with pytest.raises(NotFound, match="key_nope") as err:
            await call("key_nope")
        assert err.value.status == 404 and err.value.code == "key_not_found"
    with pytest.raises(NotFound):
        await store.update("key_nope", KeyPatch(name="x"))


async def test_expiry_is_a_status_not_a_deletion(store: KeyStore, clock: FakeClock) -> None:
    key, secret = await store.create("search", expires_at=clock.now() + 60)
    assert key.status(clock.now()) == "active"
    clock.advance(60)
    found = await store.get_by_plaintext(secret)
    assert found is not None and found.status(clock.now()) == "expired"


async def test_update_changes_only_what_the_patch_sets(store: KeyStore, clock: FakeClock) -> None:
    key, secret = await store.create("search", name="ci", tags=("a",),
                                     expires_at=clock.now() + 60)
    updated = await store.update(key.id, KeyPatch(allowed_models=("cheap",),
                                                  metadata={"k": "v"}, expires_at=None))
    assert updated.allowed_models == ("cheap",) and updated.metadata == {"k": "v"}
    assert updated.expires_at is None
    assert updated.name == "ci" and updated.tags == ("a",) and updated.team == "search"
    assert updated.hash == key.hash
    assert await store.get(key.id) == updated
    assert await store.get_by_plaintext(secret) == updated
    budgets = await store.update(key.id, KeyPatch(budgets=({"limit": 1},)))
    assert budgets.budgets == ({"limit": 1},) and budgets.allowed_models == ("cheap",)


async def test_list_by_team_and_revocation(store: KeyStore, clock: FakeClock) -> None:
    a, _ = await store.create("search")
    clock.advance(1)
    b, _ = await store.create("ads")
    clock.advance(1)
    c, _ = await store.create("search")
    await store.revoke(c.id)
    assert [k.id for k in await store.list()] == [a.id, b.id]
    assert [k.id for k in await store.list("search")] == [a.id]
    assert [k.id for k in await store.list("search", include_revoked=True)] == [a.id, c.id]
    assert await store.list("nobody") == []


async def test_non_json_budgets_are_refused(store: KeyStore) -> None:
    with pytest.raises(InvalidRequest) as err:
        await store.create("t", budgets=[{"limit": object()}])
    assert err.value.param == "budgets"
    assert await store.list() == []


async def test_team_budgets_are_replaced_and_read_back(store: KeyStore) -> None:
    assert await store.team_budgets("ops") == ()
    first = [{"resource": "usd", "window": "day", "amount": "5"}]
    await store.set_team_budgets("ops", first)
    assert [dict(b) for b in await store.team_budgets("ops")] == first
    second = [{"resource": "requests", "window": "minute", "amount": 10},
              {"resource": "usd", "window": "month", "amount": "100", "soft_ratio": 0.8}]
    await store.set_team_budgets("ops", second)
    assert [dict(b) for b in await store.team_budgets("ops")] == second
    assert await store.team_budgets("dev") == ()
