"""``thrifty report``: the dashboard's numbers in the terminal (rich tables) and, with
``--html FILE``, as one self-contained HTML file (inline CSS and SVG, no external reference)
to mail to a manager.

``--since Nd`` means the last N UTC days including today (as on the dashboard, so the daily
rollup answers it); shorter durations (``24h``, ``90m``) and ISO dates are exact. Imports of
the ledger, rich and Jinja2 happen inside ``run``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thrifty.insights.db import InsightsDB
    from thrifty.insights.filters import Filters
    from thrifty.insights.views import GroupTotal, HealthView, SpendView
    from thrifty.limits.rules import LimitRule
    from thrifty.pricing.price import Price

DEFAULT_DB = "thrifty.db"
DB_ENV = "THRIFTY_LEDGER_PATH"
_DAYS = re.compile(r"(\d+)d")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="7d", metavar="WHEN",
                        help="7d (last 7 UTC days incl. today, the default), 24h, 30m or an "
                             "ISO date")
    parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    parser.add_argument("--db", metavar="PATH",
                        help=f"SQLite ledger (default: ${DB_ENV}, else {DEFAULT_DB})")
    parser.add_argument("--postgres", metavar="DSN", help="read a PostgreSQL ledger instead")
    parser.add_argument("--schema", default="public", help="its schema (default: public)")
    parser.add_argument("--config", metavar="FILE",
                        help="gateway config: its model prices and budget rules")
    parser.add_argument("--baseline", metavar="PROVIDER/MODEL",
                        help="price savings against this model (default: the priciest served)")


@dataclass(frozen=True, slots=True)
class Report:
    label: str
    spend: SpendView
    health: HealthView
    teams: tuple[GroupTotal, ...]
    keys: tuple[GroupTotal, ...]
    generated: float


def window(text: str, now: float) -> tuple[Filters, str]:
    """The filters and a label for ``--since``."""
    from thrifty.cli.spend import parse_since
    from thrifty.insights.filters import DAY, Filters

    days = _DAYS.fullmatch(text.strip())
    if days:
        n = max(1, int(days[1]))
        today = math.floor(now / DAY) * DAY
        return Filters(since=today - (n - 1) * DAY), f"last {n} UTC days"
    since = parse_since(text, now)
    return Filters(since=since), f"since {text}"


def build(db: InsightsDB, filters: Filters, label: str, *, prices: dict[str, Price],
          baseline: str | None, rules: list[tuple[LimitRule, str]], now: float) -> Report:
    from thrifty.insights.queries import series
    from thrifty.insights.views import auto_bucket, health_view, spend_view, top_groups

    bucket = auto_bucket(filters, now)
    spend = spend_view(db, filters, dim="model", bucket=bucket, prices=prices,
                       baseline=baseline, rules=rules, now=now)
    teams = top_groups(series(db, filters, "team", bucket))
    keys = top_groups(series(db, filters, "key", bucket))
    return Report(label, spend, health_view(db, filters), teams, keys, now)


def run(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        filters, label = window(args.since, now)
    except ValueError as exc:
        print(f"thrifty report: {exc}", file=sys.stderr)
        return 2
    prices, rules = _prices_and_rules(args.config)
    if args.baseline and args.baseline not in prices:
        print(f"thrifty report: no price for baseline {args.baseline!r}; use provider/model "
              "as in the catalog (thrifty models)", file=sys.stderr)
        return 2
    db = _open(args)
    if db is None:
        return 1
    try:
        report = build(db, filters, label, prices=prices, baseline=args.baseline,
                       rules=rules, now=now)
    finally:
        db.close()
    from thrifty.cli.report_views import print_report

    print_report(report)
    if args.html:
        from thrifty.cli.report_views import html_report

        with open(args.html, "w", encoding="utf-8") as out:
            out.write(html_report(report))
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def _open(args: argparse.Namespace) -> InsightsDB | None:
    """Open (and migrate, so the rollups exist) the ledger, then a reader on it."""
    if args.postgres:
        from thrifty.insights.db import PostgresInsights
        from thrifty.ledger.postgres import PostgresLedger

        PostgresLedger(args.postgres, schema=args.schema).close()
        return PostgresInsights(args.postgres, schema=args.schema)
    path = args.db or os.environ.get(DB_ENV) or DEFAULT_DB
    if not os.path.isfile(path):
        print(f"thrifty report: no ledger at {path}; pass --db PATH or set {DB_ENV}",
              file=sys.stderr)
        return None
    from thrifty.insights.db import SQLiteInsights
    from thrifty.ledger.sqlite import SQLiteLedger

    SQLiteLedger(path).close()
    return SQLiteInsights(path)


def _prices_and_rules(config: str | None) -> tuple[dict[str, Price],
                                                    list[tuple[LimitRule, str]]]:
    from thrifty.pricing.catalog import load_catalog

    if config is None:
        return {m.key: m.price for m in load_catalog()}, []
    from thrifty.config.load import load_settings
    from thrifty.config.resolve import resolve
    from thrifty.limits.rules import parse_rules

    settings = load_settings(config)
    runtime = resolve(settings)
    prices: dict[str, Any] = {}
    for route in runtime.routes.routes():
        for t in route.targets:
            prices.setdefault(f"{t.provider}/{t.upstream_model}", t.info.price)
    for info in runtime.catalog:
        prices.setdefault(info.key, info.price)
    rules = [(r, "config") for r in parse_rules(settings.limits.rules, where="limits.rules")]
    return prices, rules
