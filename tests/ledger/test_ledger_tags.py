"""Spend by tag: a request with two tags counts in both groups, untagged ones in their own."""

from __future__ import annotations

from pathlib import Path

from thrifty.ledger.entry import LedgerEntry
from thrifty.ledger.sqlite import SQLiteLedger


def entry(i: int, tags: str | None, cost: int) -> LedgerEntry:
    return LedgerEntry(request_id=f"r{i}", ts=1_700_000_000.0 + i, requested_model="m",
                       provider="p", upstream_model="m", status=200, tags=tags,
                       cost_nano_usd=cost)


def test_spend_by_tag(tmp_path: Path) -> None:
    with SQLiteLedger(tmp_path / "l.db") as store:
        store.write_batch([entry(1, '["support", "eu"]', 100), entry(2, '["support"]', 10),
                           entry(3, None, 1)])
        rows = {r.group: (r.requests, r.cost_nano_usd) for r in store.spend("tag", None)}
        assert rows == {"support": (2, 110), "eu": (1, 100), "(no tag)": (1, 1)}
        assert store.get("r1").tags == '["support", "eu"]'  # type: ignore[union-attr]
