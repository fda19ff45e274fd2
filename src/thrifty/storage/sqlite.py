"""SQLite set-up shared by the stores that several gateway worker processes open at once."""

from __future__ import annotations

import sqlite3
import time


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
