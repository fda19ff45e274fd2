"""``thrifty keys``: create, list, rotate and revoke virtual keys, straight on the key store
(SQLite by default, ``--postgres DSN`` for PostgreSQL), without a running gateway.

A new or rotated secret is printed once, alone on stdout (so scripts can capture it); what
it is goes to stderr. Store imports happen inside ``run`` so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from thrifty.keys.model import iso

if TYPE_CHECKING:
    from thrifty.keys.model import VirtualKey
    from thrifty.keys.store import KeyStore

DEFAULT_DB = "thrifty.db"  # the ledger's default file: keys live in their own tables there
DB_ENV = "THRIFTY_KEYS_DB"

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_expiry(text: str, now: float) -> float:
    """Unix seconds for ``--expires``: a duration from ``now`` (``90s``, ``30m``, ``24h``,
    ``30d``, ``2w``) or an ISO date/time (UTC unless it carries an offset), in the future."""
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        when = now + float(duration[1]) * _UNIT_SECONDS[duration[2]]
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"cannot read --expires {text!r}: use a duration such as 30d, "
                             "24h or 90m, or an ISO date such as 2025-12-31") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        when = moment.timestamp()
    if when <= now:
        raise ValueError(f"--expires {text!r} is not in the future")
    return when


def register(parser: argparse.ArgumentParser) -> None:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--db", metavar="PATH",
                       help=f"SQLite file (default: ${DB_ENV}, else {DEFAULT_DB})")
    store.add_argument("--postgres", metavar="DSN",
                       help="use PostgreSQL instead, e.g. postgresql://user@host/db")
    store.add_argument("--schema", default="public",
                       help="PostgreSQL schema holding the keys tables (default: public)")
    store.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = sub.add_parser("create", parents=[store], help="make a key; prints it once")
    create.add_argument("--team", required=True, help="team the key belongs to")
    create.add_argument("--name", default="", help="a label, such as the service using it")
    create.add_argument("--models", type=_names, default=(), metavar="A,B",
                        help="model or alias names it may use (default: all)")
    create.add_argument("--tags", type=_names, default=(), metavar="X,Y", help="tags")
    create.add_argument("--role", choices=("inference", "read"), default="inference",
                        help="inference (calls the API, the default) or read (signs in to the "
                             "dashboard only)")
    create.add_argument("--expires", metavar="WHEN",
                        help="30d, 24h, or an ISO date (UTC); default: never")

    listing = sub.add_parser("list", parents=[store], help="list keys (never their secrets)")
    listing.add_argument("--team", help="only this team's keys")
    listing.add_argument("--all", action="store_true", help="include revoked keys")

    for action, text in (("rotate", "give a key a new secret; the old one stops working"),
                         ("revoke", "revoke a key for good")):
        p = sub.add_parser(action, parents=[store], help=text)
        p.add_argument("key_id", metavar="ID", help="the key's id (key_...)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    try:
        expires = parse_expiry(args.expires, time.time()) if getattr(args, "expires", None) \
            else None
    except ValueError as exc:
        print(f"thrifty keys: {exc}", file=sys.stderr)
        return 2
    path = args.db or os.environ.get(DB_ENV) or DEFAULT_DB
    if args.postgres is None and args.action != "create" and not os.path.isfile(path):
        print(f"thrifty keys: no keys database at {path}; pass --db PATH or set {DB_ENV} "
              "(`thrifty keys create` makes it)", file=sys.stderr)
        return 1
    return asyncio.run(_run(args, path, expires))


async def _run(args: argparse.Namespace, path: str, expires: float | None) -> int:
    import sqlite3

    from thrifty.errors import InvalidRequest, NotFound

    try:
        store = _open_store(args, path)
    except sqlite3.DatabaseError as exc:
        print(f"thrifty keys: cannot open the keys database at {path}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "create":
            key, secret = await store.create(args.team, name=args.name,
                                             allowed_models=args.models, tags=args.tags,
                                             expires_at=expires, role=args.role)
            _print_secret(key, secret, "created", as_json=args.json)
        elif args.action == "rotate":
            key, secret = await store.rotate(args.key_id)
            _print_secret(key, secret, "rotated", as_json=args.json)
        elif args.action == "revoke":
            key = await store.revoke(args.key_id)
            _print_key(key, as_json=args.json)
        else:
            keys = await store.list(args.team, include_revoked=args.all)
            _print_list(keys, as_json=args.json)
    except (NotFound, InvalidRequest) as exc:
        print(f"thrifty keys: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    return 0


def _open_store(args: argparse.Namespace, path: str) -> KeyStore:
    if args.postgres:
        from thrifty.keys.postgres_keys import PostgresKeys

        return PostgresKeys(args.postgres, schema=args.schema)
    from thrifty.keys.sqlite_keys import SQLiteKeys

    return SQLiteKeys(path)


def _print_secret(key: VirtualKey, secret: str, done: str, *, as_json: bool) -> None:
    if as_json:
        _dump({**key.public(time.time()), "key": secret})
    else:
        print(secret)
    expiry = iso(key.expires_at)
    print(f"thrifty keys: {done} {key.id} ({key.display}) for team {key.team}, expires "
          f"{expiry}. This is the only time the key is shown: store it now.", file=sys.stderr)


def _print_key(key: VirtualKey, *, as_json: bool) -> None:
    if as_json:
        _dump(key.public(time.time()))
    else:
        print(f"{key.id} ({key.display}) of team {key.team}: {key.status(time.time())}")


def _print_list(keys: Sequence[VirtualKey], *, as_json: bool) -> None:
    now = time.time()
    if as_json:
        _dump([k.public(now) for k in keys])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(keys)} virtual key(s)", title_justify="left")
    for heading in ("id", "key", "team", "name", "status", "models", "expires"):
        table.add_column(heading, no_wrap=heading in ("id", "key"))
    for k in keys:
        table.add_row(k.id, k.display, k.team, k.name, k.status(now),
                      ", ".join(k.allowed_models) or "all", iso(k.expires_at))
    Console(width=max(120, Console().width)).print(table)


def _dump(doc: object) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


