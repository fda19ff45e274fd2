"""Where the money goes: read-only aggregate queries over the ledger (SQLite or PostgreSQL)
for the dashboard (``thrifty.ui``) and ``thrifty report``.

Queries read the trigger-kept daily rollups when a window is whole UTC days and the request
rows otherwise (``filters.source_for``); nothing here writes, and nothing imports a web
framework.

    db = SQLiteInsights("thrifty.db")
    view = spend_view(db, Filters(since=now - 7 * DAY), dim="team", bucket="day",
                      prices=prices, baseline=None, rules=(), now=now)
"""
