"""``SQLiteKeys``: the ``KeyStore`` in a SQLite file, by default the ledger's ``thrifty.db``.

Owns the keys table, its versioned migrations and their runner (versions are kept in
``keys_schema_migrations``, apart from the ledger's, so the two schemas evolve independently in
one file). Writes run in ``BEGIN IMMEDIATE`` transactions and the file is in WAL mode, so the
gateway's worker processes and ``thrifty keys`` can share it. Blocking calls run in a thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from thrifty.core.clock import Clock, SystemClock
from thrifty.keys.model import (
    BudgetRule,
    KeyPatch,
    KeyRole,
    VirtualKey,
    build_key,
    hash_key,
    hashes_match,
    looks_like_key,
    new_key_id,
    new_secret,
    with_secret,
)
from thrifty.keys.store import COLUMNS, key_from_row, key_is_revoked, key_not_found, key_row
from thrifty.storage.sqlite import Migration, enable_wal, run_migrations

MEMORY = ":memory:"
VERSIONS_TABLE = "keys_schema_migrations"

# Never edit an applied migration: append a new one.
KEY_MIGRATIONS: tuple[Migration, ...] = (
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
                allowed_models TEXT NOT NULL DEFAULT '[]',
                tags TEXT NOT NULL DEFAULT '[]',
                metadata TEXT NOT NULL DEFAULT '{}',
                budgets TEXT NOT NULL DEFAULT '[]',
                created_at REAL NOT NULL,
                expires_at REAL,
                revoked_at REAL
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
                budgets TEXT NOT NULL,
                updated_at REAL NOT NULL
            )
            """,),
    ),
    Migration(
        3,
        "key roles: inference keys call the API, read keys sign in to the dashboard",
        ("ALTER TABLE virtual_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'inference'",),
    ),
)

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM virtual_keys"
_INSERT = (f"INSERT INTO virtual_keys ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(COLUMNS))})")
_T = TypeVar("_T")


class SQLiteKeys:
    """A ``KeyStore`` in one SQLite file (parent directories are created), or ``:memory:``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.path = str(path)
        self.clock: Clock = clock or SystemClock()
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Explicit transactions only (autocommit mode); any pool thread may run a call, and
        # ``_lock`` serialises them on the one connection.
        self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                     check_same_thread=False)
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if self.path != MEMORY:
                enable_wal(self._conn, busy_timeout_s)
            self.schema_version = migrate_keys(self._conn, where=self.path)
        except BaseException:
            self._conn.close()
            raise

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
        row = key_row(key)
        await self._run(lambda: self._write(lambda c: c.execute(_INSERT, row)))
        return key, plaintext

    async def get_by_plaintext(self, plaintext: str) -> VirtualKey | None:
        if not looks_like_key(plaintext):
            return None
        digest = hash_key(plaintext)
        key = await self._run(lambda: self._one("key_hash", digest))
        if key is None or not hashes_match(key.hash, digest):
            return None
        return key

    async def get(self, key_id: str) -> VirtualKey:
        key = await self._run(lambda: self._one("id", key_id))
        if key is None:
            raise key_not_found(key_id)
        return key

    async def list(
        self, team: str | None = None, *, include_revoked: bool = False
    ) -> Sequence[VirtualKey]:
        clauses, params = [], []
        if team is not None:
            clauses.append("team = ?")
            params.append(team)
        if not include_revoked:
            clauses.append("revoked_at IS NULL")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT}{where} ORDER BY created_at, id"

        def read() -> list[VirtualKey]:
            with self._lock:
                return [key_from_row(r) for r in self._conn.execute(sql, params).fetchall()]

        return await self._run(read)

    async def rotate(self, key_id: str) -> tuple[VirtualKey, str]:
        plaintext = new_secret()

        def change(conn: sqlite3.Connection) -> VirtualKey:
            key = self._current(conn, key_id, "rotated")
            rotated = with_secret(key, plaintext)
            conn.execute("UPDATE virtual_keys SET key_hash = ?, prefix = ? WHERE id = ?",
                         (rotated.hash, rotated.prefix, key_id))
            return rotated

        return await self._run(lambda: self._write(change)), plaintext

    async def revoke(self, key_id: str) -> VirtualKey:
        now = self.clock.now()

        def change(conn: sqlite3.Connection) -> VirtualKey:
            conn.execute("UPDATE virtual_keys SET revoked_at = ? "
                         "WHERE id = ? AND revoked_at IS NULL", (now, key_id))
            key = _select_one(conn, "id", key_id)
            if key is None:
                raise key_not_found(key_id)
            return key

        return await self._run(lambda: self._write(change))

    async def update(self, key_id: str, patch: KeyPatch) -> VirtualKey:
        def change(conn: sqlite3.Connection) -> VirtualKey:
            key = patch.apply(self._current(conn, key_id, "updated"))
            row = dict(zip(COLUMNS, key_row(key), strict=True))
            sets = ("name", "allowed_models", "tags", "metadata", "expires_at", "budgets")
            conn.execute(
                f"UPDATE virtual_keys SET {', '.join(f'{c} = ?' for c in sets)} WHERE id = ?",
                (*(row[c] for c in sets), key_id),
            )
            return key

        return await self._run(lambda: self._write(change))

    async def set_team_budgets(self, team: str, budgets: Sequence[BudgetRule]) -> None:
        data = json.dumps([dict(b) for b in budgets])
        now = self.clock.now()
        await self._run(lambda: self._write(lambda c: c.execute(
            "INSERT INTO team_budgets (team, budgets, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (team) DO UPDATE SET budgets = excluded.budgets, "
            "updated_at = excluded.updated_at", (team, data, now))))

    async def team_budgets(self, team: str) -> tuple[BudgetRule, ...]:
        def read() -> tuple[BudgetRule, ...]:
            with self._lock:
                row = self._conn.execute("SELECT budgets FROM team_budgets WHERE team = ?",
                                         (team,)).fetchone()
            return () if row is None else tuple(json.loads(row[0]))

        return await self._run(read)

    async def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    @staticmethod
    def _current(conn: sqlite3.Connection, key_id: str, action: str) -> VirtualKey:
        key = _select_one(conn, "id", key_id)
        if key is None:
            raise key_not_found(key_id)
        if key.revoked_at is not None:
            raise key_is_revoked(key, action)
        return key

    def _one(self, column: str, value: str) -> VirtualKey | None:
        with self._lock:
            return _select_one(self._conn, column, value)

    def _write(self, change: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock, _immediate(self._conn):
            return change(self._conn)

    @staticmethod
    async def _run(call: Callable[[], _T]) -> _T:
        return await asyncio.to_thread(call)


def _select_one(conn: sqlite3.Connection, column: str, value: str) -> VirtualKey | None:
    # ``column`` is one of two literals from this module, never caller text.
    row = conn.execute(f"{_SELECT} WHERE {column} = ?", (value,)).fetchone()
    return None if row is None else key_from_row(row)


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction. IMMEDIATE takes the write lock up front, so a busy file waits in
    busy_timeout instead of failing when a read lock cannot be upgraded mid-transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # some errors (disk full) already rolled back
            conn.execute("ROLLBACK")
        raise


def migrate_keys(
    conn: sqlite3.Connection, *, where: str, migrations: tuple[Migration, ...] = KEY_MIGRATIONS
) -> int:
    """Apply the keys migrations not yet in ``keys_schema_migrations``; return the version."""
    return run_migrations(conn, migrations, table=VERSIONS_TABLE, what="keys", where=where,
                          fix="point --db at another file")
