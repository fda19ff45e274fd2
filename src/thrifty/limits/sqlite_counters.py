"""``SQLiteCounters``: limit counters in one SQLite file, exact across the gateway worker
processes of one machine. Every reserve, settle and release is one ``BEGIN IMMEDIATE``
transaction (the file's write lock), so check-and-take is atomic between processes.

Owns its schema (versioned, in its own version table) and SQL; the decision is ``decide``'s.
Blocking inside: the async methods run it in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from thrifty.limits.decide import decide, merge_wants, settle_amount
from thrifty.limits.model import (
    DEFAULT_RESERVATION_TTL_S,
    DEFAULT_RETAIN_S,
    Limit,
    ReserveResult,
    window_bounds,
)
from thrifty.storage.connection import OwnedConnection
from thrifty.storage.sqlite import Migration, enable_wal, run_migrations

MEMORY = ":memory:"
_GC_EVERY_S = 60.0

# Never edit an applied migration: append one. Windows are keyed by their start; window_end
# is NULL for "total" (never rolls over). A reservation has one row per hold; expired rows
# have given their room back and stay until retain_s passes, for late settles.
_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "limit windows and open reservations",
        (
            """
            CREATE TABLE limit_windows (
                limit_id TEXT NOT NULL,
                window_start REAL NOT NULL,
                window_end REAL,
                settled INTEGER NOT NULL DEFAULT 0,
                reserved INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (limit_id, window_start)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX limit_windows_end ON limit_windows (window_end)",
            """
            CREATE TABLE limit_holds (
                reservation_id TEXT NOT NULL,
                limit_id TEXT NOT NULL,
                window_start REAL NOT NULL,
                window_end REAL,
                amount INTEGER NOT NULL,
                expires_at REAL NOT NULL,
                expired INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (reservation_id, limit_id)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX limit_holds_expiry ON limit_holds (expired, expires_at)",
            "CREATE INDEX limit_holds_window ON limit_holds (limit_id, window_start)",
        ),
    ),
)
_VERSIONS = "limits_schema_migrations"

# One statement for every change to a window: add (settled, reserved) deltas, creating it.
_ADD = (
    "INSERT INTO limit_windows (limit_id, window_start, window_end, settled, reserved) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (limit_id, window_start) DO UPDATE SET "
    "settled = settled + excluded.settled, reserved = reserved + excluded.reserved"
)
_USED = "SELECT settled, reserved FROM limit_windows WHERE limit_id = ? AND window_start = ?"
_HOLDS = (
    "SELECT limit_id, window_start, window_end, amount, expired FROM limit_holds "
    "WHERE reservation_id = ?"
)
_OVERDUE = (
    "SELECT limit_id, window_start, window_end, SUM(amount) FROM limit_holds "
    "WHERE expired = 0 AND expires_at <= ? GROUP BY limit_id, window_start, window_end"
)
_OVERDUE_IN = (
    "SELECT COALESCE(SUM(amount), 0) FROM limit_holds "
    "WHERE limit_id = ? AND window_start = ? AND expired = 0 AND expires_at <= ?"
)


class SQLiteCounters(OwnedConnection[sqlite3.Connection]):
    """The ``Counters`` contract in one SQLite file (parent directories are created), or
    ``:memory:``. ``ttl_s`` and ``retain_s`` mean what they mean for ``MemoryCounters``;
    a file busier than ``busy_timeout_s`` raises ``sqlite3.OperationalError``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        retain_s: float = DEFAULT_RETAIN_S,
        busy_timeout_s: float = 10.0,
    ) -> None:
        if not 0 < ttl_s <= retain_s:
            raise ValueError(f"need 0 < ttl_s <= retain_s, got ttl_s={ttl_s} retain_s={retain_s}")
        self.path = str(path)
        self._ttl_s = ttl_s
        self._retain_s = retain_s
        self._next_gc = -math.inf
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every transaction is explicit. asyncio.to_thread may run us on any pool
        # thread, hence check_same_thread off and ``_lock`` around every use.
        self._conn = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        super().__init__()  # the lock and the closed flag
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if self.path != MEMORY:
                enable_wal(self._conn, busy_timeout_s)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self.schema_version = _migrate(self._conn, where=self.path)
        except BaseException:
            self._conn.close()
            raise

    async def reserve(
        self, reservation_id: str, wants: Sequence[tuple[Limit, int]], now: float
    ) -> ReserveResult:
        return await asyncio.to_thread(self._reserve, reservation_id, wants, now)

    async def settle(self, reservation_id: str, actual: Mapping[str, int]) -> None:
        await asyncio.to_thread(self._close_reservation, reservation_id, actual)

    async def release(self, reservation_id: str) -> None:
        await asyncio.to_thread(self._close_reservation, reservation_id, None)

    async def usage(self, limits: Sequence[Limit], now: float) -> list[tuple[Limit, int, int]]:
        return await asyncio.to_thread(self._usage, limits, now)

    def _reserve(
        self, reservation_id: str, wants: Sequence[tuple[Limit, int]], now: float
    ) -> ReserveResult:
        merged = merge_wants(wants)
        with self._write() as conn:
            self._sweep(conn, now)
            taken = conn.execute(
                "SELECT 1 FROM limit_holds WHERE reservation_id = ? LIMIT 1", (reservation_id,)
            ).fetchone()
            if taken is not None:
                raise ValueError(f"reservation id {reservation_id!r} is already in use")
            used = {}
            for limit, _ in merged:
                start, _end = window_bounds(limit.window, now)
                row = conn.execute(_USED, (limit.id, start)).fetchone()
                used[limit.id] = 0 if row is None else row[0] + row[1]
            result = decide(merged, used, now)
            if result.ok:
                rows = [
                    (h.limit.id, h.window_start, _end_of(h.limit, h.window_start), h.amount)
                    for h in result.holds
                ]
                conn.executemany(_ADD, [(lid, ws, we, 0, amount) for lid, ws, we, amount in rows])
                conn.executemany(
                    "INSERT INTO limit_holds (reservation_id, limit_id, window_start, "
                    "window_end, amount, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(reservation_id, *row, now + self._ttl_s) for row in rows],
                )
        return result

    def _close_reservation(self, reservation_id: str, actual: Mapping[str, int] | None) -> None:
        """Settle (``actual`` given) or release (``None``) in one transaction; an unknown id
        (never reserved, or closed already) finds no rows and changes nothing."""
        with self._write() as conn:
            deltas = []
            for limit_id, start, end, held, expired in conn.execute(_HOLDS, (reservation_id,)):
                settled = 0 if actual is None else settle_amount(limit_id, held, actual)
                deltas.append((limit_id, start, end, settled, 0 if expired else -held))
            if not deltas:
                return
            conn.executemany(_ADD, deltas)
            conn.execute("DELETE FROM limit_holds WHERE reservation_id = ?", (reservation_id,))

    def _usage(self, limits: Sequence[Limit], now: float) -> list[tuple[Limit, int, int]]:
        # A read transaction: one consistent snapshot, no write lock. Holds overdue but not
        # yet swept by a reserve are not counted as reserved.
        out = []
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                for limit in limits:
                    start, _ = window_bounds(limit.window, now)
                    row = self._conn.execute(_USED, (limit.id, start)).fetchone()
                    settled, reserved = (0, 0) if row is None else row
                    [(overdue,)] = self._conn.execute(_OVERDUE_IN, (limit.id, start, now))
                    out.append((limit, int(settled), int(reserved - overdue)))
            finally:
                self._conn.execute("COMMIT")
        return out

    def _sweep(self, conn: sqlite3.Connection, now: float) -> None:
        """Give back the room of overdue holds; now and then forget old windows and holds."""
        overdue = conn.execute(_OVERDUE, (now,)).fetchall()
        if overdue:
            conn.executemany(_ADD, [(lid, ws, we, 0, -total) for lid, ws, we, total in overdue])
            conn.execute(
                "UPDATE limit_holds SET expired = 1 WHERE expired = 0 AND expires_at <= ?", (now,)
            )
        if now >= self._next_gc:
            self._next_gc = now + _GC_EVERY_S
            cutoff = now - self._retain_s
            conn.execute("DELETE FROM limit_holds WHERE expired = 1 AND expires_at <= ?",
                          (cutoff,))
            conn.execute("DELETE FROM limit_windows WHERE window_end <= ? AND reserved = 0",
                         (cutoff,))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            # IMMEDIATE takes the write lock before reading, so no other process can take
            # room between our check and our write (and a busy file waits in busy_timeout).
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise


def _end_of(limit: Limit, window_start: float) -> float | None:
    _, end = window_bounds(limit.window, window_start)
    return None if math.isinf(end) else end


def _migrate(conn: sqlite3.Connection, *, where: str) -> int:
    migrations = tuple(Migration(n, d, st) for n, d, st in _MIGRATIONS)
    return run_migrations(conn, migrations, table=_VERSIONS, what="limits", where=where,
                          fix="point the limits at another file")
