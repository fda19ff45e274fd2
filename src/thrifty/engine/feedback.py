"""Feedback on answers (``POST /v1/thrifty/feedback``): a client scores a request it made,
the score is stored in the ledger, and a learned route that chose the request's model
refines its predictor online.

Prompts are never written to the ledger, so the prompts of recent learned-route requests
are kept here, in memory, in a bounded most-recent-first book: feedback arriving after
its request has left the book is stored but cannot refine the router."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

CAPACITY = 10_000


@dataclass(frozen=True, slots=True)
class Pending:
    prompt: str
    model: str
    route: str
    router: Any
    """The route's ``LearnedRouter`` (anything with ``update(prompt, model, score)``)."""


class FeedbackBook:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._book: OrderedDict[str, Pending] = OrderedDict()

    def remember(self, request_id: str, pending: Pending) -> None:
        self._book[request_id] = pending
        if len(self._book) > self._capacity:
            self._book.popitem(last=False)

    def apply(self, request_id: str, score: float) -> Pending | None:
        """Refine the router that routed ``request_id``; None when it is not in the book."""
        pending = self._book.pop(request_id, None)
        if pending is not None:
            pending.router.update(pending.prompt, pending.model, score)
        return pending

    def __len__(self) -> int:
        return len(self._book)
