"""Time every dashboard query on a SQLite ledger of a million rows.

    python benchmarks/dashboard_1m.py                 # seeds /tmp/thrifty-dashboard-1m.db once
    python benchmarks/dashboard_1m.py --rows 200000 --db /tmp/small.db

Seeds realistic traffic (``dashboard_seed.py``: 30 days, 8 teams, 60 keys, cascades, errors),
folds it into the rollups once (the one-time catch-up a new dashboard pays), then builds each
page the way the dashboard does, for each preset window, and prints milliseconds per query
and per page. Each page is built twice and the second (warm page cache) run is printed;
the first is printed too, so cold numbers are not hidden.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from dashboard_seed import seed

from thrifty.insights.db import SQLiteInsights
from thrifty.insights.queries import dimension_values, request_rows
from thrifty.insights.views import Timings, health_view, spend_view
from thrifty.limits.rules import parse_rules
from thrifty.pricing.catalog import shipped_catalog
from thrifty.ui.pages import PICKERS
from thrifty.ui.render import WINDOWS, window_filters

RULES = parse_rules([
    {"resource": "usd", "window": "month", "scope": "team", "value": "*", "amount": "5000"},
    {"resource": "usd", "window": "day", "amount": "400"},
    {"resource": "requests", "window": "hour", "scope": "key", "value": "key_0001",
     "amount": 5000},
])


def page_timings(db: SQLiteInsights, window: str, now: float, team: str | None
                 ) -> dict[str, dict[str, float]]:
    dims = (("team", team),) if team else ()
    filters, bucket, _ = window_filters(window, now, dims)
    prices = {m.key: m.price for m in shipped_catalog()}
    spend = spend_view(db, filters, dim="model", bucket=bucket, prices=prices, baseline=None,
                       rules=[(r, "config") for r in RULES], now=now)
    pickers = Timings()
    for dim in PICKERS:
        pickers.run(f"picker {dim}",
                    lambda d=dim: dimension_values(db, filters.but(**{d: None}), d, 40))
    health = health_view(db, filters)
    rows = Timings()
    rows.run("costliest 50", lambda: request_rows(db, filters, limit=51))
    rows.run("newest 50", lambda: request_rows(db, filters, order="recent", limit=51))
    return {"spend": {**spend.timings.ms, **pickers.ms}, "health": health.timings.ms,
            "requests": {**rows.ms, **pickers.ms}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default="/tmp/thrifty-dashboard-1m.db")
    args = parser.parse_args()
    path = Path(args.db)
    if not path.exists():
        t0 = time.perf_counter()
        done = seed(str(path), args.rows, end=time.time())
        print(f"seeded {done.rows:,} requests and {done.attempts:,} attempts in "
              f"{time.perf_counter() - t0:.1f} s")
    db = SQLiteInsights(str(path))
    t0 = time.perf_counter()
    folded = db.refresh()
    print(f"rollup catch-up: {folded:,} rows in {time.perf_counter() - t0:.2f} s "
          f"(once; later calls fold only new rows)")
    (newest,) = db.fetch("SELECT MAX(ts) FROM requests")[0]
    total = db.fetch("SELECT COUNT(*) FROM requests")[0][0]
    print(f"ledger: {total:,} rows, {path.stat().st_size / 1e6:,.0f} MB\n")
    print(f"{'window':>6} {'filter':>12} {'page':>9} {'cold ms':>8} {'warm ms':>8}  "
          "warm ms per query")
    for window in WINDOWS:
        for team in (None, "search"):
            cold = page_timings(db, window, newest, team)
            warm = page_timings(db, window, newest, team)
            for page, queries in warm.items():
                detail = ", ".join(f"{k} {v:.1f}" for k, v in queries.items())
                print(f"{window:>6} {team or '-':>12} {page:>9} "
                      f"{sum(cold[page].values()):8.1f} {sum(queries.values()):8.1f}  "
                      f"{detail}")
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
