"""One owned database connection guarded by a lock, closed once: what the SQLite and
PostgreSQL stores share (the ledgers, the limit counters). Stores call blocking drivers
from ``asyncio.to_thread``, so any thread may use the connection; the lock serialises it."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class OwnedConnection(Generic[C]):
    """Base for a store holding the connection ``_conn``, set after ``__init__`` here."""

    _conn: C

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
