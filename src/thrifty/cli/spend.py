"""``thrifty spend``: summarise the ledger by model, provider, day, key or status.

Reads the ledger only through ``LedgerStore.spend``; ledger imports happen inside ``run`` so
building the CLI parser stays cheap.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from thrifty.ledger.store import SPEND_GROUPINGS

if TYPE_CHECKING:
    from thrifty.ledger.store import SpendRow

DEFAULT_DB = "thrifty.db"
DB_ENV = "THRIFTY_LEDGER_PATH"

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_since(text: str, now: float) -> float:
    """Unix seconds for ``--since``/``--until``: a duration back from ``now`` (``90s``, ``30m``
    minutes, ``24h``, ``7d``, ``2w``) or an ISO date/time (``2024-05-01``,
    ``2024-05-01T12:00``; UTC unless it carries an offset)."""
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        return now - float(duration[1]) * _UNIT_SECONDS[duration[2]]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a time: use a duration such as 7d, 24h or 30m, "
            "or an ISO date such as 2024-05-01"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=SPEND_GROUPINGS, default="model",
                        help="what to group by (default: model)")
    parser.add_argument("--since", metavar="WHEN",
                        help="only requests from then on: 7d, 24h, 30m or an ISO date (UTC)")
    parser.add_argument("--until", metavar="WHEN", help="only requests before then (same forms)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--db", metavar="PATH",
                        help=f"ledger file (default: ${DB_ENV}, else {DEFAULT_DB})")


def run(args: argparse.Namespace) -> int:
    path = args.db or os.environ.get(DB_ENV) or DEFAULT_DB
    now = time.time()
    try:
        since = parse_since(args.since, now) if args.since else None
        until = parse_since(args.until, now) if args.until else None
    except ValueError as exc:
        print(f"thrifty spend: {exc}", file=sys.stderr)
        return 2
    if not os.path.isfile(path):
        print(
            f"thrifty spend: no ledger at {path}; pass --db PATH or set {DB_ENV} "
            "(the gateway creates the file when it starts)",
            file=sys.stderr,
        )
        return 1

    import sqlite3

    from thrifty.ledger.sqlite import SQLiteLedger

    try:
        with SQLiteLedger(path) as store:
            rows = store.spend(args.by, since, until)
    except sqlite3.DatabaseError as exc:
        print(f"thrifty spend: cannot read the ledger at {path}: {exc}", file=sys.stderr)
        return 1
    _print(rows, args.by, since, until, as_json=args.json)
    return 0


def _print(
    rows: list[SpendRow], by: str, since: float | None, until: float | None, *, as_json: bool
) -> None:
    from thrifty.ledger.spend import spend_json, spend_table, spend_total_json

    if as_json:
        import orjson

        doc = {
            "by": by,
            "since": _iso(since),
            "until": _iso(until),
            "rows": spend_json(rows),
            "total": spend_total_json(rows),
        }
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from rich.console import Console

    window = f"since {_iso(since)}" if since is not None else "all time"
    if until is not None:
        window += f" until {_iso(until)}"
    table = spend_table(rows, by, title=f"Spend by {by}, {window}")
    console = Console()
    if not console.is_terminal:
        # Piped or redirected: widen to the table rather than truncate its cells.
        needed = console.measure(table, options=console.options.update(width=1_000)).maximum
        console = Console(width=max(console.width, needed))
    console.print(table)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
