"""Insights queries against hand-computed figures, on SQLite and PostgreSQL.

The ledger (conftest.small_ledger): day 0: r1 cheap -> openai/gpt-4o-mini, one call, $450 µ;
r2 smart -> cascade escalated from gpt-4o-mini (330 k nano) to claude-sonnet-4-6 (7.5 M nano);
r3 gpt-4o failed 502. Day 1: r4 cheap -> a groq 429 then gpt-4o-mini (75 k nano); r5 refused
before routing (429). Teams: r1, r2 search; r3, r4 research; r5 none.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from thrifty.insights.budgets import budget_usage
from thrifty.insights.db import InsightsDB
from thrifty.insights.filters import Filters
from thrifty.insights.queries import (
    Tokens,
    deployment_stats,
    dimension_values,
    request_detail,
    request_rows,
    series,
)
from thrifty.insights.savings import savings
from thrifty.insights.views import Totals
from thrifty.limits.rules import parse_rules
from thrifty.pricing.price import Price

from .conftest import DAY0, DAY1, DAY2, open_seeded, small_ledger

WHOLE = Filters(since=DAY0, until=DAY2)  # whole UTC days: the rollup answers
RAW = Filters(since=DAY0 - 0.5, until=DAY2)  # the same rows, read from the request rows


@pytest.mark.parametrize("filters", [WHOLE, RAW], ids=["rollup", "rows"])
def test_deployment_stats(ledger_db: InsightsDB, filters: Filters) -> None:
    ledger_db.refresh()
    stats = {s.key: s for s in deployment_stats(ledger_db, filters)}
    assert set(stats) == {"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-6",
                          "openai/gpt-4o", "(unrouted)"}
    mini = stats["openai/gpt-4o-mini"]
    assert (mini.requests, mini.errors, mini.multi, mini.cascade) == (2, 0, 1, 0)
    assert mini.cost_nano == 525_000
    # r1's own tokens plus the answering call of r4 (not the groq attempt)
    assert mini.answer_tokens == Tokens(input=1100, output=600)
    sonnet = stats["anthropic/claude-sonnet-4-6"]
    assert (sonnet.requests, sonnet.multi, sonnet.cascade, sonnet.cascade_multi) == (1, 1, 1, 1)
    assert sonnet.answer_tokens == Tokens(input=1000, output=300)  # tier 1 only
    assert sonnet.ttft_n == 1 and sonnet.ttft_ms_sum == 200.0
    assert (stats["openai/gpt-4o"].errors, stats["(unrouted)"].errors) == (1, 1)
    totals = Totals.of(list(stats.values()))
    assert (totals.requests, totals.errors, totals.cost_nano) == (5, 2, 8_355_000)


def test_filters_change_the_numbers(ledger_db: InsightsDB) -> None:
    ledger_db.refresh()
    for filters in (WHOLE, RAW):
        search = Totals.of(deployment_stats(ledger_db, filters.but(team="search")))
        research = Totals.of(deployment_stats(ledger_db, filters.but(team="research")))
        assert (search.requests, search.cost_nano) == (2, 8_280_000)
        assert (research.requests, research.cost_nano, research.errors) == (2, 75_000, 1)
        routed = Totals.of(deployment_stats(ledger_db, filters.but(model="openai/gpt-4o-mini")))
        assert routed.requests == 2
        cascade = Totals.of(deployment_stats(ledger_db, filters.but(route="smart")))
        assert cascade.requests == 1
        nobody = Totals.of(deployment_stats(ledger_db, filters.but(team="(no team)")))
        assert nobody.requests == 1


@pytest.mark.parametrize("filters", [WHOLE, RAW], ids=["rollup", "rows"])
def test_series_by_team_and_day(ledger_db: InsightsDB, filters: Filters) -> None:
    ledger_db.refresh()
    rows = {(r.start, r.group): (r.cost_nano, r.requests, r.errors)
            for r in series(ledger_db, filters, "team", "day")}
    assert rows == {
        (DAY0, "search"): (8_280_000, 2, 0),
        (DAY0, "research"): (0, 1, 1),
        (DAY1, "research"): (75_000, 1, 0),
        (DAY1, "(no team)"): (0, 1, 1),
    }


def test_hourly_series_and_route_labels(ledger_db: InsightsDB) -> None:
    rows = series(ledger_db, WHOLE, "route", "hour")
    assert {(r.start, r.group) for r in rows} == {
        (DAY0, "cheap"), (DAY0, "smart"), (DAY0, "direct"), (DAY1, "cheap"), (DAY1, "(none)")}


def test_costliest_and_detail(ledger_db: InsightsDB) -> None:
    rows = request_rows(ledger_db, WHOLE, limit=10)
    assert [r.request_id for r in rows] == ["r2", "r1", "r4", "r5", "r3"]
    assert rows[0].model == "anthropic/claude-sonnet-4-6" and rows[0].calls == 2
    recent = request_rows(ledger_db, WHOLE, order="recent", limit=2)
    assert [r.request_id for r in recent] == ["r5", "r4"]
    assert [r.request_id for r in request_rows(ledger_db, WHOLE.but(key="k3"))] == ["r4", "r3"]
    found = request_detail(ledger_db, "r2")
    assert found is not None
    row, attempts = found
    assert row["cost_nano_usd"] == 7_830_000 and row["route"] == "smart;cascade;auto"
    assert [(a["tier"], a["upstream_model"], a["verdict"]) for a in attempts] == [
        (0, "gpt-4o-mini", "escalated: format"), (1, "claude-sonnet-4-6", "accepted")]
    assert request_detail(ledger_db, "nope") is None


def test_savings_against_a_baseline(ledger_db: InsightsDB) -> None:
    ledger_db.refresh()
    price = Price.of("3", "15", "0.3")
    for filters in (WHOLE, RAW):
        s = savings(deployment_stats(ledger_db, filters), "anthropic/claude-sonnet-4-6", price)
        # mini: (1100 x 3 + 600 x 15) / 1e6 USD = 12.3 M nano on the baseline, 525 k spent
        assert (s.routing.requests, s.routing.baseline_nano, s.routing.actual_nano) == (
            2, 12_300_000, 525_000)
        # sonnet answered r2 itself: one call would be 7.5 M; the cheap tier added 330 k
        assert (s.by_baseline.baseline_nano, s.by_baseline.saved_nano) == (7_500_000, -330_000)
        assert s.total.saved_nano == 11_445_000
        assert s.failed_cost_nano == 0
        assert "not enabled" in s.caching
        assert Decimal(s.total.saved_nano) / Decimal(s.total.baseline_nano) == Decimal(
            11_445_000) / Decimal(19_800_000)


def test_budget_usage(ledger_db: InsightsDB) -> None:
    ledger_db.refresh()
    rules = parse_rules([
        {"resource": "usd", "window": "day", "amount": "0.01"},
        {"resource": "requests", "window": "day", "scope": "team", "value": "*", "amount": 4},
        {"resource": "requests", "window": "total", "scope": "key", "value": "k3", "amount": 10},
    ])
    usage = {(u.scope, u.resource, u.window): (u.used, u.limit)
             for u in budget_usage(ledger_db, [(r, "config") for r in rules], DAY0 + 500)}
    assert usage == {
        ("global", "usd", "day"): (8_280_000, 10_000_000),
        ("team=search", "requests", "day"): (2, 4),
        ("team=research", "requests", "day"): (1, 4),
        ("key=k3", "requests", "total"): (2, 10),
    }
    on_day1 = budget_usage(ledger_db, [(rules[1], "config")], DAY1 + 100)
    assert [(u.scope, u.used) for u in on_day1] == [("team=research", 1)]  # no "(no team)"


def test_dimension_values_rank_by_spend(ledger_db: InsightsDB) -> None:
    ledger_db.refresh()
    assert dimension_values(ledger_db, WHOLE, "team") == ["search", "research", "(no team)"]
    assert dimension_values(ledger_db, RAW, "model")[0] == "anthropic/claude-sonnet-4-6"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_retried_batch_is_counted_once(backend: str, tmp_path: Path) -> None:
    rows = small_ledger()
    for db in open_seeded(backend, tmp_path, rows + rows):  # the second copy is skipped
        db.refresh()
        assert Totals.of(deployment_stats(db, WHOLE)).requests == 5


def test_rows_written_between_reads_are_folded_in(tmp_path: Path) -> None:
    from thrifty.ledger.sqlite import SQLiteLedger

    rows = small_ledger()
    for db in open_seeded("sqlite", tmp_path, rows[:3]):
        assert db.refresh() == 3
        assert Totals.of(deployment_stats(db, WHOLE)).requests == 3
        with SQLiteLedger(str(tmp_path / "ledger.db")) as store:
            store.write_batch(rows[3:])
        assert db.refresh(min_interval_s=0) == 2 and db.refresh(min_interval_s=0) == 0
        assert Totals.of(deployment_stats(db, WHOLE)).cost_nano == 8_355_000
