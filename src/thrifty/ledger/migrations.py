"""Versioned schema migrations for the SQLite ledger, applied when a store opens.

Owns the ordered migration list and the runner; it must not hold queries (``sqlite.py`` does).
Each migration runs in its own ``BEGIN IMMEDIATE`` transaction and re-reads the version inside
it, so gateway processes that open a fresh file at the same moment apply it exactly once.
"""

from __future__ import annotations

import sqlite3

from thrifty.ledger.rollups import DASHBOARD_INDEXES, sqlite_statements
from thrifty.storage.sqlite import Migration, run_migrations, schema_version

__all__ = ["SQLITE_MIGRATIONS", "Migration", "current_version", "migrate"]


# Never edit an applied migration: append a new one. ``requests`` keeps one row per client
# request; a later ``attempts`` table links its rows by ``request_id`` (hence UNIQUE).
SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "requests table with spend indexes",
        (
            """
            CREATE TABLE requests (
                id INTEGER PRIMARY KEY,
                request_id TEXT NOT NULL UNIQUE,
                ts REAL NOT NULL,
                requested_model TEXT NOT NULL,
                provider TEXT,
                upstream_model TEXT,
                status INTEGER NOT NULL,
                stream INTEGER NOT NULL DEFAULT 0,
                key_id TEXT,
                end_user TEXT,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                cached_input_tokens INTEGER NOT NULL DEFAULT 0,
                cache_write_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                reasoning_tokens INTEGER NOT NULL DEFAULT 0,
                cost_nano_usd INTEGER NOT NULL DEFAULT 0,
                latency_ms REAL NOT NULL DEFAULT 0,
                ttft_ms REAL,
                error_type TEXT,
                route TEXT,
                usage_known INTEGER NOT NULL DEFAULT 1
            )
            """,
            "CREATE INDEX requests_ts ON requests (ts)",
            "CREATE INDEX requests_model_ts ON requests (upstream_model, ts)",
            "CREATE INDEX requests_provider_ts ON requests (provider, ts)",
            "CREATE INDEX requests_key_ts ON requests (key_id, ts)",
        ),
    ),
    Migration(
        2,
        "routing decision trace and the number of upstream calls per request",
        (
            "ALTER TABLE requests ADD COLUMN trace TEXT",
            "ALTER TABLE requests ADD COLUMN calls INTEGER NOT NULL DEFAULT 1",
        ),
    ),
    Migration(
        3,
        "feedback scores on requests (POST /v1/thrifty/feedback)",
        (
            """
            CREATE TABLE feedback (
                id INTEGER PRIMARY KEY,
                request_id TEXT NOT NULL,
                ts REAL NOT NULL,
                score REAL NOT NULL,
                model TEXT,
                route TEXT
            )
            """,
            "CREATE INDEX feedback_request ON feedback (request_id)",
        ),
    ),
    Migration(
        4,
        "one row per upstream attempt, linked to its request",
        (
            """
            CREATE TABLE attempts (
                request_id TEXT NOT NULL,
                n INTEGER NOT NULL,
                tier INTEGER NOT NULL DEFAULT 0,
                provider TEXT NOT NULL,
                upstream_model TEXT NOT NULL,
                status INTEGER NOT NULL,
                error_type TEXT,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                cached_input_tokens INTEGER NOT NULL DEFAULT 0,
                cache_write_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                reasoning_tokens INTEGER NOT NULL DEFAULT 0,
                cost_nano_usd INTEGER NOT NULL DEFAULT 0,
                latency_ms REAL NOT NULL DEFAULT 0,
                verdict TEXT,
                usage_known INTEGER NOT NULL DEFAULT 1,
                PRIMARY KEY (request_id, n)
            )
            """,
            "CREATE INDEX attempts_provider ON attempts (provider, upstream_model)",
        ),
    ),
    Migration(
        5,
        "the team of the virtual key that made the request",
        (
            "ALTER TABLE requests ADD COLUMN team TEXT",
            "CREATE INDEX requests_team_ts ON requests (team, ts)",
        ),
    ),
    Migration(
        6,
        "the request's tags (a JSON array) for spend by tag",
        ("ALTER TABLE requests ADD COLUMN tags TEXT",),
    ),
    Migration(
        7,
        "dashboard: daily and latency rollups (caught up before reads), indexes for its queries",
        (
            *sqlite_statements(),
            *DASHBOARD_INDEXES,
        ),
    ),
    Migration(
        8,
        "drop the percentiles' latency indexes (percentiles come from the histogram now)",
        # Version 7 created them until DASHBOARD_INDEXES lost them: a fresh file never has
        # them, one migrated before does; both end the same.
        ("DROP INDEX IF EXISTS requests_latency", "DROP INDEX IF EXISTS requests_ttft"),
    ),
)

_TABLE = "schema_migrations"


def current_version(conn: sqlite3.Connection) -> int:
    """The highest applied version, 0 for a database thrifty never touched."""
    return schema_version(conn, _TABLE)


def migrate(
    conn: sqlite3.Connection,
    *,
    where: str,
    migrations: tuple[Migration, ...] = SQLITE_MIGRATIONS,
) -> int:
    """Bring the schema up to the last of ``migrations`` and return its version. ``conn`` must
    be in autocommit mode (``isolation_level=None``); ``where`` names the file in errors."""
    return run_migrations(conn, migrations, table=_TABLE, what="ledger", where=where,
                          fix="point the ledger at another file")
