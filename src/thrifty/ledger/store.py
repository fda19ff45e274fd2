"""The ledger's storage contract (``LedgerStore``) and the spend summary row it returns.

Backend-neutral: SQLite implements it today and PostgreSQL later, so nothing here names a
database. Stores are synchronous and called from a worker thread (see ``writer.py``); they must
never be called on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from thrifty.ledger.entry import LedgerEntry
from thrifty.pricing.cost import from_nano_usd

SPEND_GROUPINGS: tuple[str, ...] = ("model", "requested", "provider", "day", "key", "team",
                                    "tag", "status")
"""What ``spend(by=...)`` may group on:

- ``model``: the model that served the request, as ``provider/upstream_model``; a request that
  failed before any provider was chosen is grouped as ``(unrouted) <requested model>``.
- ``requested``: the model name the client asked for (an alias such as ``cheap`` stays as is).
- ``provider``: the provider that served it, ``(unrouted)`` when none did.
- ``day``: the UTC calendar day of the request's arrival, ``YYYY-MM-DD``.
- ``key``: the gateway key id, ``(no key)`` when auth is off.
- ``status``: the HTTP status returned to the client.
"""

ERROR_STATUS = 400
"""A request counts as an error in ``SpendRow.errors`` when its status is at least this."""


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One group of a spend summary. Sums are exact integers; cost is kept in nano-dollars so
    that totals over rows stay exact, and exposed as ``Decimal`` dollars."""

    group: str
    requests: int
    errors: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_nano_usd: int
    avg_latency_ms: float
    max_latency_ms: float

    @property
    def cost(self) -> Decimal:
        """US dollars, exact."""
        return from_nano_usd(self.cost_nano_usd)

    @classmethod
    def from_db(cls, row: tuple[Any, ...]) -> SpendRow:
        """From a spend query's row (group, requests, errors, the five token sums, cost,
        average and peak latency), whatever numeric types the driver returns."""
        group, requests, errors, inp, cached, written, out, reasoning, cost, avg, peak = row
        return cls(group=str(group), requests=int(requests), errors=int(errors),
                   input_tokens=int(inp), cached_input_tokens=int(cached),
                   cache_write_tokens=int(written), output_tokens=int(out),
                   reasoning_tokens=int(reasoning), cost_nano_usd=int(cost),
                   avg_latency_ms=float(avg), max_latency_ms=float(peak))


def spend_total(rows: Iterable[SpendRow], group: str = "total") -> SpendRow:
    """The row that sums ``rows``; average latency is weighted by each group's requests."""
    rows = list(rows)
    requests = sum(r.requests for r in rows)
    weighted = sum(r.avg_latency_ms * r.requests for r in rows)
    return SpendRow(
        group=group,
        requests=requests,
        errors=sum(r.errors for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        cached_input_tokens=sum(r.cached_input_tokens for r in rows),
        cache_write_tokens=sum(r.cache_write_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        reasoning_tokens=sum(r.reasoning_tokens for r in rows),
        cost_nano_usd=sum(r.cost_nano_usd for r in rows),
        avg_latency_ms=weighted / requests if requests else 0.0,
        max_latency_ms=max((r.max_latency_ms for r in rows), default=0.0),
    )


def check_grouping(by: str) -> str:
    """``by`` itself when it is one of ``SPEND_GROUPINGS``; a ``ValueError`` naming them if not."""
    if by not in SPEND_GROUPINGS:
        choices = ", ".join(SPEND_GROUPINGS)
        raise ValueError(f"cannot group spend by {by!r}; choose one of {choices}")
    return by


class LedgerStore(Protocol):
    """Where ledger rows live. Every method is blocking; call them off the event loop.

    ``write_batch`` must be atomic (all rows or none) and idempotent on ``request_id``: the
    writer retries a batch whose outcome it could not see, so a row that is already stored is
    skipped, not duplicated and not an error.
    """

    def write_batch(self, entries: Sequence[LedgerEntry]) -> None:
        """Store ``entries`` in one transaction."""

    def spend(self, by: str, since: float | None, until: float | None = None) -> list[SpendRow]:
        """Requests with ``since <= ts < until`` (either bound may be open), grouped by ``by``
        (one of ``SPEND_GROUPINGS``). Days and statuses come in ascending order; other groups
        by cost, highest first."""

    def get(self, request_id: str) -> LedgerEntry | None:
        """The row of one request, or None."""

    def count(self) -> int:
        """How many request rows are stored."""

    def add_feedback(self, request_id: str, ts: float, score: float, model: str | None,
                     route: str | None) -> None:
        """Store a client's quality score for one request (any number per request)."""

    def close(self) -> None:
        """Release the connection; idempotent."""
