"""``PostgresKeys``: the ``KeyStore`` in PostgreSQL, for gateways spread over several hosts.

Owns the PostgreSQL DDL, its versioned migrations and the queries. psycopg 3 (the
``thrifty[postgres]`` extra) is imported when the store first connects, so ``import thrifty``
never needs it. Migrations run under an advisory lock, so replicas starting together apply
each exactly once.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from thrifty.core.clock import Clock, SystemClock
from thrifty.errors import ConfigError
from thrifty.keys.model import (
    BudgetRule,
    KeyPatch,
    KeyRole,
    VirtualKey,
    build_key,
    display_prefix,
    hash_key,
    hashes_match,
    looks_like_key,
    new_key_id,
    new_secret,
)
from thrifty.keys.store import COLUMNS, key_from_row, key_is_revoked, key_not_found, key_row
from thrifty.ledger.migrations import Migration

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

INSTALL_HINT = "PostgresKeys needs psycopg 3: pip install 'thrifty[postgres]'"
VERSIONS_TABLE = "keys_schema_migrations"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_JSON_COLUMNS = frozenset({"allowed_models", "tags", "metadata", "budgets"})

# Never edit an applied migration: append a new one.
PG_KEY_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "virtual keys, found by the SHA-256 of their secret",
        (
            """
            CREATE TABLE virtual_keys (
                id TEXT PRIMARY KEY,
                key_hash TEXT NOT NULL UNIQUE,
                prefix TEXT NOT NULL,
                team TEXT NOT NULL,
                name TEXT NOT NULL DEFAULT '',
                allowed_models JSONB NOT NULL DEFAULT '[]',
                tags JSONB NOT NULL DEFAULT '[]',
                metadata JSONB NOT NULL DEFAULT '{}',
                budgets JSONB NOT NULL DEFAULT '[]',
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION,
                revoked_at DOUBLE PRECISION
            )
            """,
            "CREATE INDEX virtual_keys_team ON virtual_keys (team, created_at)",
        ),
    ),
    Migration(
        2,
        "budgets of a whole team, set through the admin API",
        ("""
            CREATE TABLE team_budgets (
                team TEXT PRIMARY KEY,
                budgets JSONB NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,),
    ),
    Migration(
        3,
        "key roles: inference keys call the API, read keys sign in to the dashboard",
        ("ALTER TABLE virtual_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'inference'",),
    ),
)

# JSONB columns travel as text both ways, so both SQL stores share one row codec.
_READ_COLUMNS = ", ".join(f"{c}::text" if c in _JSON_COLUMNS else c for c in COLUMNS)
_SELECT = f"SELECT {_READ_COLUMNS} FROM virtual_keys"
_INSERT = (
    f"INSERT INTO virtual_keys ({', '.join(COLUMNS)}) VALUES "
    f"({', '.join('%s::jsonb' if c in _JSON_COLUMNS else '%s' for c in COLUMNS)})"
)
_PATCHED = ("name", "allowed_models", "tags", "metadata", "expires_at", "budgets")
_UPDATE = (
    "UPDATE virtual_keys SET "
    + ", ".join(f"{c} = %s::jsonb" if c in _JSON_COLUMNS else f"{c} = %s" for c in _PATCHED)
    + " WHERE id = %s"
)


class PostgresKeys:
    """A ``KeyStore`` in the tables of one PostgreSQL ``schema`` (created if missing).

    Connects on first use through a small pool; call ``close()`` when done.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        clock: Clock | None = None,
        pool_size: int = 4,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigError(f"keys schema {schema!r} is not a plain lower-case SQL name "
                              "(letters, digits, underscores)")
        self.dsn = dsn
        self.schema = schema
        self.clock: Clock = clock or SystemClock()
        self._pool_size = pool_size
        self._timeout = connect_timeout_s
        self._pool: AsyncConnectionPool[AsyncConnection[tuple[object, ...]]] | None = None
        self._opening = asyncio.Lock()

    async def create(
        self,
        team: str,
        *,
        name: str = "",
        allowed_models: Sequence[str] = (),
        tags: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
        expires_at: float | None = None,
        budgets: Sequence[BudgetRule] = (),
        role: KeyRole = "inference",
    ) -> tuple[VirtualKey, str]:
        plaintext = new_secret()
        key = build_key(plaintext, key_id=new_key_id(), team=team, name=name,
                        allowed_models=allowed_models, tags=tags, metadata=metadata,
                        created_at=self.clock.now(), expires_at=expires_at, budgets=budgets,
                        role=role)
        pool = await self._ready()
        async with pool.connection() as conn:
            await conn.execute(_INSERT, key_row(key))
        return key, plaintext

    async def get_by_plaintext(self, plaintext: str) -> VirtualKey | None:
        if not looks_like_key(plaintext):
            return None
        digest = hash_key(plaintext)
        key = await self._fetch_one(f"{_SELECT} WHERE key_hash = %s", (digest,))
        if key is None or not hashes_match(key.hash, digest):
            return None
        return key

    async def get(self, key_id: str) -> VirtualKey:
        key = await self._fetch_one(f"{_SELECT} WHERE id = %s", (key_id,))
        if key is None:
            raise key_not_found(key_id)
        return key

    async def list(
        self, team: str | None = None, *, include_revoked: bool = False
    ) -> Sequence[VirtualKey]:
        clauses: list[str] = []
        params: list[str] = []
        if team is not None:
            clauses.append("team = %s")
            params.append(team)
        if not include_revoked:
            clauses.append("revoked_at IS NULL")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        pool = await self._ready()
        async with pool.connection() as conn:
            cur = await conn.execute(f"{_SELECT}{where} ORDER BY created_at, id", params)
            return [key_from_row(row) for row in await cur.fetchall()]

    async def rotate(self, key_id: str) -> tuple[VirtualKey, str]:
        plaintext = new_secret()
        # One statement: the old hash stops matching the moment it commits.
        key = await self._fetch_one(
            f"UPDATE virtual_keys SET key_hash = %s, prefix = %s "
            f"WHERE id = %s AND revoked_at IS NULL RETURNING {_READ_COLUMNS}",
            (hash_key(plaintext), display_prefix(plaintext), key_id),
        )
        if key is None:
            raise key_is_revoked(await self.get(key_id), "rotated")  # or NotFound from get
        return key, plaintext

    async def revoke(self, key_id: str) -> VirtualKey:
        key = await self._fetch_one(
            "UPDATE virtual_keys SET revoked_at = COALESCE(revoked_at, %s) "
            f"WHERE id = %s RETURNING {_READ_COLUMNS}",
            (self.clock.now(), key_id),
        )
        if key is None:
            raise key_not_found(key_id)
        return key

    async def update(self, key_id: str, patch: KeyPatch) -> VirtualKey:
        pool = await self._ready()
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(f"{_SELECT} WHERE id = %s FOR UPDATE", (key_id,))
            row = await cur.fetchone()
            if row is None:
                raise key_not_found(key_id)
            current = key_from_row(row)
            if current.revoked_at is not None:
                raise key_is_revoked(current, "updated")
            key = patch.apply(current)
            values = dict(zip(COLUMNS, key_row(key), strict=True))
            await conn.execute(_UPDATE, (*(values[c] for c in _PATCHED), key_id))
        return key

    async def set_team_budgets(self, team: str, budgets: Sequence[BudgetRule]) -> None:
        pool = await self._ready()
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO team_budgets (team, budgets, updated_at) VALUES "
                "(%s, %s::jsonb, %s) ON CONFLICT (team) DO UPDATE SET "
                "budgets = excluded.budgets, updated_at = excluded.updated_at",
                (team, json.dumps([dict(b) for b in budgets]), self.clock.now()))

    async def team_budgets(self, team: str) -> tuple[BudgetRule, ...]:
        pool = await self._ready()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT budgets::text FROM team_budgets WHERE team = %s", (team,))
            row = await cur.fetchone()
        return () if row is None else tuple(json.loads(str(row[0])))

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _fetch_one(self, query: str, params: Sequence[object]) -> VirtualKey | None:
        pool = await self._ready()
        async with pool.connection() as conn:
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
        return None if row is None else key_from_row(row)

    async def _ready(self) -> AsyncConnectionPool[AsyncConnection[tuple[object, ...]]]:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                self._pool = await self._open()
        return self._pool

    async def _open(self) -> AsyncConnectionPool[AsyncConnection[tuple[object, ...]]]:
        try:
            import psycopg
            from psycopg import sql
            from psycopg_pool import AsyncConnectionPool
        except ImportError as exc:
            raise ConfigError(f"{INSTALL_HINT} ({exc.name} is missing)") from None

        set_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema))

        async def configure(conn: AsyncConnection[tuple[object, ...]]) -> None:
            await conn.execute(set_path)

        pool: AsyncConnectionPool[AsyncConnection[tuple[object, ...]]] = AsyncConnectionPool(
            self.dsn, min_size=1, max_size=self._pool_size, open=False,
            kwargs={"autocommit": True}, configure=configure, timeout=self._timeout,
        )
        try:
            # A direct connection first: it fails fast with the server's own reason
            # (refused, no such database), where the pool would only time out.
            async with await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, connect_timeout=max(1, round(self._timeout))
            ) as conn:
                await migrate_pg_keys(conn, self.schema)
            await pool.open(wait=True, timeout=self._timeout)
        except (psycopg.Error, TimeoutError) as exc:
            await pool.close()
            raise ConfigError(f"cannot open the keys store in PostgreSQL schema "
                              f"{self.schema!r}: {exc}") from exc
        except BaseException:
            await pool.close()
            raise
        return pool


async def migrate_pg_keys(
    conn: AsyncConnection[tuple[object, ...]],
    schema: str,
    migrations: tuple[Migration, ...] = PG_KEY_MIGRATIONS,
) -> int:
    """Create ``schema`` and apply the keys migrations it lacks, in one transaction under an
    advisory lock (transactional DDL: a failed migration leaves nothing half-done)."""
    from psycopg import sql

    latest = migrations[-1].version if migrations else 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                           (f"thrifty.keys.{schema}",))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(schema)))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(
            sql.Identifier(schema)))
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (version INTEGER "
                           "PRIMARY KEY, description TEXT NOT NULL, "
                           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        cur = await conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {VERSIONS_TABLE}")
        row = await cur.fetchone()
        version = int(str(row[0])) if row else 0
        if version > latest:
            raise ConfigError(
                f"PostgreSQL schema {schema!r} has keys schema version {version}, but this "
                f"thrifty only knows up to version {latest}: upgrade thrifty"
            )
        for migration in migrations:
            if migration.version > version:
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    f"INSERT INTO {VERSIONS_TABLE} (version, description) VALUES (%s, %s)",
                    (migration.version, migration.description),
                )
                version = migration.version
    return version
