"""Observers: what else wants to see a finished request besides the ledger (metrics, drift
detection, traces). The gateway calls each one from ``Gateway.record``, on the request path,
so an observer must be cheap and must not block: aggregate in memory, ship elsewhere later.
An observer that raises is logged and skipped; it never fails the request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from thrifty.engine.account import Outcome
    from thrifty.ledger.entry import LedgerEntry


class Observer(Protocol):
    def request_done(self, outcome: Outcome, entry: LedgerEntry) -> None:
        """The request ended (answered, failed, refused or abandoned): ``outcome`` holds
        every upstream call it made, ``entry`` is its priced ledger row."""
