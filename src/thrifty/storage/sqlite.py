"""SQLite set-up shared by the stores that several gateway worker processes open at once."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from thrifty.errors import ConfigError


def enable_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    """Switch to WAL. SQLite answers SQLITE_BUSY here without calling the busy handler when
    another process is switching the same fresh file at the same moment, so retry by hand."""
    deadline = time.monotonic() + busy_timeout_s
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


def schema_version(conn: sqlite3.Connection, table: str) -> int:
    """The highest version recorded in ``table``, 0 for a file never migrated."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute(f"SELECT MAX(version) FROM {table}").fetchone()
    return int(row[0] or 0)


def run_migrations(conn: sqlite3.Connection, migrations: tuple[Migration, ...], *,
                   table: str, what: str, where: str, fix: str) -> int:
    """Bring a store's schema up to the last of ``migrations`` and return its version.
    Each migration runs in its own ``BEGIN IMMEDIATE`` transaction that re-reads the
    version, so processes opening a fresh file together apply each exactly once. ``conn``
    must be in autocommit mode; ``table`` (a literal of the caller's) records the versions,
    so several stores can share a file. A newer schema than the code knows is refused."""
    latest = migrations[-1].version if migrations else 0
    version = schema_version(conn, table)
    _refuse_newer(version, latest, what, where, fix)
    for migration in migrations:
        if migration.version <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, "
                         "description TEXT NOT NULL, applied_at REAL NOT NULL)")
            # another process may have migrated while this one waited for the write lock
            version = schema_version(conn, table)
            _refuse_newer(version, latest, what, where, fix)
            if version < migration.version:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {table} (version, description, applied_at) "
                             "VALUES (?, ?, ?)",
                             (migration.version, migration.description, time.time()))
                version = migration.version
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # some errors (disk full) already rolled back
                conn.execute("ROLLBACK")
            raise
    return version


def _refuse_newer(version: int, latest: int, what: str, where: str, fix: str) -> None:
    if version > latest:
        raise ConfigError(
            f"{what} database {where} has schema version {version}, but this thrifty only "
            f"knows up to version {latest}: upgrade thrifty, or {fix}"
        )
