"""The SQLite ledger store (stdlib ``sqlite3``): one connection per process, WAL, batches in
``BEGIN IMMEDIATE`` transactions, so several gateway worker processes can share one file.

Owns the SQL for rows and spend queries; the schema itself lives in ``migrations.py``. Blocking:
call it from a worker thread (``LedgerWriter`` does), never on the event loop.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

from thrifty.ledger.entry import AttemptRow, LedgerEntry
from thrifty.ledger.migrations import migrate
from thrifty.ledger.store import ERROR_STATUS, SpendRow, check_grouping
from thrifty.storage.connection import OwnedConnection
from thrifty.storage.sqlite import enable_wal

MEMORY = ":memory:"

_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(LedgerEntry) if f.name != "attempts"
)
_ATTEMPT_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AttemptRow))
_ATTEMPT_COLUMNS = ("request_id", *_ATTEMPT_FIELDS)
_attempt_values = attrgetter(*_ATTEMPT_FIELDS)
# ``user`` is a reserved word in PostgreSQL; keep column names portable across backends.
_COLUMN_FOR_FIELD = {"user": "end_user"}
_COLUMNS = tuple(_COLUMN_FOR_FIELD.get(name, name) for name in _FIELDS)
_BOOL_FIELDS = frozenset(
    f.name for f in dataclasses.fields(LedgerEntry) if f.type in ("bool", bool)
)
_row_values = attrgetter(*_FIELDS)

_ROWS_PER_INSERT = 32
"""Rows per multi-row INSERT. ``executemany`` runs one statement per row, and sqlite3 lets
go of the GIL around each: under load every row was a GIL hand-off with the event loop
(futex calls, context switches). 32 rows x 26 columns stays far below SQLite's limit on
bound parameters."""


def _insert_sql(table: str, columns: Sequence[str], conflict: str, rows: int) -> str:
    # DO NOTHING on a known key makes a retried batch idempotent (see LedgerStore).
    one = f"({', '.join('?' for _ in columns)})"
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)} "
            f"ON CONFLICT ({conflict}) DO NOTHING")


_INSERT_SQL = {n: _insert_sql("requests", _COLUMNS, "request_id", n)
               for n in range(1, _ROWS_PER_INSERT + 1)}
_INSERT_ATTEMPT_SQL = {n: _insert_sql("attempts", _ATTEMPT_COLUMNS, "request_id, n", n)
                       for n in range(1, _ROWS_PER_INSERT + 1)}
_SELECT_ONE = f"SELECT {', '.join(_COLUMNS)} FROM requests WHERE request_id = ?"

# Fixed SQL per grouping (never built from user text); meanings are documented on
# ``store.SPEND_GROUPINGS``.
_GROUP_SQL = {
    "model": (
        "CASE WHEN upstream_model IS NULL THEN '(unrouted) ' || requested_model "
        "ELSE COALESCE(provider, '(unknown)') || '/' || upstream_model END"
    ),
    "requested": "requested_model",
    "provider": "COALESCE(provider, '(unrouted)')",
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
    "key": "COALESCE(key_id, '(no key)')",
    "team": "COALESCE(team, '(no team)')",
    "tag": "tag.value",
    "status": "CAST(status AS TEXT)",
}
_CHRONOLOGICAL = frozenset({"day", "status"})
# a request with two tags counts in both groups; untagged requests form their own group
_TAG_JOIN = """, json_each(COALESCE(requests.tags, '["(no tag)"]')) AS tag"""


class SQLiteLedger(OwnedConnection[sqlite3.Connection]):
    """A ``LedgerStore`` in one SQLite file (parent directories are created), or ``:memory:``.

    >>> store = SQLiteLedger(":memory:")
    >>> store.write_batch([LedgerEntry("req-1", 1.0, "m", "p", "m", 200)])
    >>> store.count()
    1
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 10.0) -> None:
        self.path = str(path)
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every transaction below is explicit. check_same_thread is off
        # because asyncio.to_thread may use any pool thread; ``_lock`` serialises use.
        self._conn = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        super().__init__()  # the lock and the closed flag
        try:
            self._configure(busy_timeout_s)
            self.schema_version = migrate(self._conn, where=self.path)
        except BaseException:
            self._conn.close()
            raise

    def _configure(self, busy_timeout_s: float) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if self.path != MEMORY:
            # WAL lets readers (``thrifty spend``, the dashboard) run while workers write;
            # NORMAL loses at most the last commits on power loss, never corrupts.
            enable_wal(conn, busy_timeout_s)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")

    def write_batch(self, entries: Sequence[LedgerEntry]) -> None:
        if not entries:
            return
        rows = [_row_values(entry) for entry in entries]
        attempts = [(e.request_id, *_attempt_values(a)) for e in entries for a in e.attempts]
        with self._lock:
            # IMMEDIATE takes the write lock up front, so a busy file waits in busy_timeout
            # instead of failing mid-transaction when a read lock cannot be upgraded.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                _insert_all(self._conn, _INSERT_SQL, rows)
                _insert_all(self._conn, _INSERT_ATTEMPT_SQL, attempts)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def get(self, request_id: str) -> LedgerEntry | None:
        with self._lock:
            row = self._conn.execute(_SELECT_ONE, (request_id,)).fetchone()
        if row is None:
            return None
        values: dict[str, Any] = dict(zip(_FIELDS, row, strict=True))
        for name in _BOOL_FIELDS:
            values[name] = bool(values[name])
        return LedgerEntry(**values)

    def attempts(self, request_id: str) -> list[AttemptRow]:
        cols = ", ".join(_ATTEMPT_FIELDS)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {cols} FROM attempts WHERE request_id = ? ORDER BY n", (request_id,)
            ).fetchall()
        out = []
        for row in rows:
            values: dict[str, Any] = dict(zip(_ATTEMPT_FIELDS, row, strict=True))
            values["usage_known"] = bool(values["usage_known"])
            out.append(AttemptRow(**values))
        return out

    def recent_model_stats(self, since: float) -> list[tuple[str, str, int, float | None,
                                                              float | None, float | None,
                                                              float]]:
        """Per deployment since ``since``, from its attempts: (provider, upstream_model,
        attempts, mean latency ms of successes, mean time to first token of the requests it
        answered, mean output tokens of successes, error rate). Seeds routing stats."""
        sql = """
            SELECT a.provider, a.upstream_model, COUNT(*),
                   AVG(CASE WHEN a.status < 400 THEN a.latency_ms END),
                   AVG(CASE WHEN a.status < 400 THEN r.ttft_ms END),
                   AVG(CASE WHEN a.status < 400 THEN a.output_tokens END),
                   AVG(CASE WHEN a.status >= 400 AND a.status != 499 THEN 1.0 ELSE 0.0 END)
            FROM attempts a JOIN requests r ON r.request_id = a.request_id
            WHERE r.ts >= ? GROUP BY a.provider, a.upstream_model
        """
        with self._lock:
            return [tuple(row) for row in self._conn.execute(sql, (since,)).fetchall()]

    def count(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COUNT(*) FROM requests").fetchone()
        return int(row[0])

    def add_feedback(self, request_id: str, ts: float, score: float, model: str | None,
                     route: str | None) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT INTO feedback (request_id, ts, score, model, route) "
                "VALUES (?, ?, ?, ?, ?)", (request_id, ts, score, model, route))

    def spend(self, by: str, since: float | None, until: float | None = None) -> list[SpendRow]:
        group = _GROUP_SQL[check_grouping(by)]
        where, params = _time_filter(since, until)
        order = "grp" if by in _CHRONOLOGICAL else "cost DESC, requests DESC, grp"
        sql = f"""
            SELECT {group} AS grp, COUNT(*) AS requests,
                   SUM(CASE WHEN status >= {ERROR_STATUS} THEN 1 ELSE 0 END),
                   SUM(input_tokens), SUM(cached_input_tokens), SUM(cache_write_tokens),
                   SUM(output_tokens), SUM(reasoning_tokens), SUM(cost_nano_usd) AS cost,
                   AVG(latency_ms), MAX(latency_ms)
            FROM requests {_TAG_JOIN if by == "tag" else ""} {where}
            GROUP BY grp ORDER BY {order}
        """
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [SpendRow.from_db(row) for row in rows]


def _time_filter(since: float | None, until: float | None) -> tuple[str, list[float]]:
    clauses: list[str] = []
    params: list[float] = []
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since)
    if until is not None:
        clauses.append("ts < ?")
        params.append(until)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _insert_all(conn: sqlite3.Connection, sql: dict[int, str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows`` in multi-row INSERTs of up to ``_ROWS_PER_INSERT``: one statement (and one
    GIL release) per chunk instead of per row."""
    for i in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[i:i + _ROWS_PER_INSERT]
        conn.execute(sql[len(chunk)], [v for row in chunk for v in row])
