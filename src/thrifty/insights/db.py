"""A read connection to the ledger for the dashboard and ``thrifty report``: SQLite (its own
connection to the ledger file, so reads never wait behind the writer's lock) or PostgreSQL.

Owns connecting and running SQL text; it builds no queries. Blocking: call ``fetch`` from a
worker thread in async code (``asyncio.to_thread``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from thrifty.config.schema import LedgerConfig
from thrifty.errors import ConfigError
from thrifty.ledger.rollups import catch_up

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few places SQLite and PostgreSQL differ in the insights queries."""

    postgres: bool

    @property
    def mark(self) -> str:
        return "%s" if self.postgres else "?"

    def floor_div(self, column: str, by: int) -> str:
        if self.postgres:
            return f"floor({column} / {by})::bigint"
        return f"CAST({column} / {by} AS INTEGER)"


class InsightsDB(Protocol):
    dialect: Dialect

    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Every row of one read-only query."""

    def refresh(self) -> int:
        """Bring the rollups up to date with the request rows; returns rows folded in."""

    def close(self) -> None: ...


class SQLiteInsights:
    """Reads one SQLite ledger file (migrated: open it with ``SQLiteLedger`` first)."""

    dialect = Dialect(postgres=False)

    def __init__(self, path: str, *, busy_timeout_s: float = 10.0) -> None:
        if path == ":memory:":
            raise ConfigError("the dashboard reads the ledger file; an in-memory ledger "
                              "(ledger.path ':memory:') cannot be read from another connection")
        self.path = path
        self._conn = sqlite3.connect(path, timeout=busy_timeout_s, check_same_thread=False,
                                     isolation_level=None)
        self._conn.execute("PRAGMA query_only = ON")  # this connection never writes
        self._lock = threading.Lock()
        self._timeout = busy_timeout_s
        self._writer: sqlite3.Connection | None = None
        self._refreshed = 0.0

    def refresh(self, *, min_interval_s: float = 1.0) -> int:
        """Run the rollups' catch-up (``ledger.rollups.catch_up``) on a second, writing
        connection; at most once per ``min_interval_s``, pages call it on every load."""
        with self._lock:
            now = time.monotonic()
            if now - self._refreshed < min_interval_s:
                return 0
            if self._writer is None:
                self._writer = sqlite3.connect(self.path, timeout=self._timeout,
                                               check_same_thread=False, isolation_level=None)
                # The catch-up reads new rows once, in order: small page caches (its
                # file's, and the temporary one its GROUP BYs sort in) serve it, and the
                # gateway's memory does not grow by SQLite's 2 MB default for each.
                self._writer.execute(f"PRAGMA cache_size = -{_CATCH_UP_CACHE_KB}")
                self._writer.execute(f"PRAGMA temp.cache_size = -{_CATCH_UP_CACHE_KB}")
            done = catch_up(self._writer, chunk=_CATCH_UP_CHUNK)
            self._refreshed = time.monotonic()
            return done

    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._writer is not None:
                self._writer.close()


_CATCH_UP_CACHE_KB = 256
_CATCH_UP_CHUNK = 10_000
"""Rows folded per transaction: the write lock, which ledger batches wait on, is held
briefly, and a fold's sort memory stays small."""


class PostgresInsights:
    """Reads the ledger in one PostgreSQL schema; a broken connection is reopened."""

    dialect = Dialect(postgres=True)

    def __init__(self, dsn: str, *, schema: str = "public") -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError("the PostgreSQL ledger needs psycopg 3: "
                              "pip install 'thrifty[postgres]'") from exc
        self._dsn = dsn
        self._schema = schema
        self._lock = threading.Lock()
        self._conn: Any = None

    def _connection(self) -> Any:
        import psycopg
        from psycopg import sql

        if self._conn is None or self._conn.broken or self._conn.closed:
            conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10,
                                   application_name="thrifty-insights")
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
            conn.execute("SET default_transaction_read_only = on")
            self._conn = conn
        return self._conn

    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        with self._lock:
            rows: list[Row] = self._connection().execute(sql, tuple(params)).fetchall()
            return rows

    def refresh(self) -> int:
        return 0  # statement triggers keep PostgreSQL's rollups current

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_insights(cfg: LedgerConfig) -> InsightsDB | None:
    """A reader for the configured ledger, or None when the ledger is off. The ledger store
    must have been opened once already (it creates and migrates the schema)."""
    if cfg.backend == "none":
        return None
    if cfg.backend == "postgres":
        if cfg.dsn is None:
            raise ConfigError("ledger.dsn: the postgres ledger needs a DSN")
        return PostgresInsights(cfg.dsn.get_secret_value(), schema=cfg.pg_schema)
    return SQLiteInsights(cfg.path)
