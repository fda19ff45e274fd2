"""PostgresKeys against the real server on 127.0.0.1:5432 (schema per test, dropped after):
secrets never stored, replicas migrating at once, and clear errors when it cannot connect."""

from __future__ import annotations

import asyncio
import socket
import sys
import uuid
from collections.abc import Iterator

import pytest

from thrifty.errors import ConfigError
from thrifty.keys.postgres_keys import VERSIONS_TABLE, PostgresKeys

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

needs_postgres = pytest.mark.skipif(
    not postgres_listening(), reason="nothing listens on 127.0.0.1:5432 (PostgreSQL)"
)


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"thrifty_keys_test_{uuid.uuid4().hex[:12]}"
    yield name
    drop_schema(name)


def table_text(schema: str, table: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_DSN) as conn:
        rows = conn.execute(
            sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier(schema, table))
        ).fetchall()
    return "\n".join(str(r[0]) for r in rows)


@needs_postgres
async def test_plaintext_is_never_stored(schema: str) -> None:
    store = PostgresKeys(PG_DSN, schema=schema)
    key, old = await store.create("t", name="n")
    rotated, new = await store.rotate(key.id)
    await store.close()
    text = table_text(schema, "virtual_keys")
    assert rotated.hash in text and key.hash not in text
    for secret in (old, new):
        assert secret not in text and secret[3:] not in text


@needs_postgres
async def test_replicas_starting_together_migrate_once(schema: str) -> None:
    stores = [PostgresKeys(PG_DSN, schema=schema) for _ in range(4)]
    made = await asyncio.gather(*(s.create(f"r{i}") for i, s in enumerate(stores)))
    assert len({k.id for k, _ in made}) == 4
    assert len(await stores[0].list()) == 4
    for s in stores:
        await s.close()
    assert table_text(schema, VERSIONS_TABLE).count("virtual keys") == 1


def public_tables() -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(PG_DSN) as conn:
        return conn.execute(
            f"SELECT to_regclass('public.virtual_keys'), "
            f"to_regclass('public.{VERSIONS_TABLE}')").fetchall()


@needs_postgres
async def test_migrating_a_schema_leaves_public_alone(schema: str) -> None:
    before = public_tables()
    store = PostgresKeys(PG_DSN, schema=schema)
    await store.create("t")
    await store.close()
    assert public_tables() == before
    assert "virtual keys" in table_text(schema, VERSIONS_TABLE)


@needs_postgres
async def test_schema_isolation(schema: str) -> None:
    other = f"{schema}_b"
    try:
        a, b = PostgresKeys(PG_DSN, schema=schema), PostgresKeys(PG_DSN, schema=other)
        _, secret = await a.create("t")
        assert await b.get_by_plaintext(secret) is None
        assert await b.list() == []
        await a.close()
        await b.close()
    finally:
        drop_schema(other)


@pytest.mark.parametrize("bad", ["Public", "x; DROP TABLE y", "", "1abc", "a" * 64])
def test_schema_must_be_a_plain_name(bad: str) -> None:
    with pytest.raises(ConfigError, match="plain lower-case SQL name"):
        PostgresKeys(PG_DSN, schema=bad)


async def test_an_unreachable_server_is_a_clear_error() -> None:
    store = PostgresKeys("postgresql://postgres@127.0.0.1:1/test", connect_timeout_s=1.0)
    with pytest.raises(ConfigError, match="cannot open the keys store"):
        await store.get("key_x")
    await store.close()


async def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    store = PostgresKeys(PG_DSN)
    with pytest.raises(ConfigError, match=r"pip install 'thrifty\[postgres\]'"):
        await store.list()
