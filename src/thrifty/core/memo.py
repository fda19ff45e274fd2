"""Values derived once from an immutable object and looked up by its identity: for objects
that are costly or impossible to hash (a ``Target`` holds dicts; hashing a ``Price`` is
Decimal arithmetic), on paths that run per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    """``memo(obj)`` is ``make(obj)``, computed once per object. The object is kept with its
    value, so its id cannot be reused by another object while the entry lives; past
    ``limit`` entries (objects made per request, a reloaded config) all are dropped.

    >>> lengths = IdentityMemo(len)
    >>> word = "thrifty"
    >>> lengths(word), lengths(word)
    (7, 7)
    """

    __slots__ = ("_entries", "_limit", "_make")

    def __init__(self, make: Callable[[K], V], limit: int = 4096) -> None:
        self._make = make
        self._limit = limit
        self._entries: dict[int, tuple[K, V]] = {}

    def __call__(self, key: K) -> V:
        hit = self._entries.get(id(key))
        if hit is None or hit[0] is not key:
            if len(self._entries) >= self._limit:
                self._entries.clear()
            hit = self._entries[id(key)] = (key, self._make(key))
        return hit[1]
