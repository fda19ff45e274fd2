"""Versioned schema migrations for the PostgreSQL ledger, applied when a store opens.

Owns the ordered migration list and the runner; it must not hold row queries
(``postgres.py`` does). Each migration runs in its own transaction under an advisory lock and
re-reads the version inside it, so replicas starting together apply it exactly once.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from thrifty.errors import ConfigError
from thrifty.ledger.migrations import Migration
from thrifty.ledger.rollups import DASHBOARD_INDEXES, postgres_statements

# Never edit an applied migration: append a new one. Unqualified names resolve in the
# store's schema (the connection's search_path). Money is BIGINT nano-dollars; ``ts`` is
# Unix seconds as double precision, like SQLite's REAL, so spend queries compare plain
# numbers. Identifier columns compare bytewise (COLLATE "C"): cheaper index upkeep than a
# locale's rules, and the same order as SQLite. Version 1 is SQLite's versions 1-5 in one step
# (no PostgreSQL ledger predates it).
PG_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "requests, attempts and feedback tables with spend indexes",
        (
            """
            CREATE TABLE requests (
                request_id TEXT COLLATE "C" PRIMARY KEY,
                ts DOUBLE PRECISION NOT NULL,
                requested_model TEXT COLLATE "C" NOT NULL,
                provider TEXT COLLATE "C",
                upstream_model TEXT COLLATE "C",
                status INTEGER NOT NULL,
                stream BOOLEAN NOT NULL DEFAULT FALSE,
                key_id TEXT COLLATE "C",
                end_user TEXT,
                team TEXT COLLATE "C",
                input_tokens BIGINT NOT NULL DEFAULT 0,
                cached_input_tokens BIGINT NOT NULL DEFAULT 0,
                cache_write_tokens BIGINT NOT NULL DEFAULT 0,
                output_tokens BIGINT NOT NULL DEFAULT 0,
                reasoning_tokens BIGINT NOT NULL DEFAULT 0,
                cost_nano_usd BIGINT NOT NULL DEFAULT 0,
                latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
                ttft_ms DOUBLE PRECISION,
                error_type TEXT,
                route TEXT,
                usage_known BOOLEAN NOT NULL DEFAULT TRUE,
                trace TEXT,
                calls INTEGER NOT NULL DEFAULT 1
            )
            """,
            # A btree, not BRIN: measured at 2M rows, the planner never chose a BRIN next to
            # it; BRIN alone matched it only while rows stay in ``ts`` order on disk.
            "CREATE INDEX requests_ts ON requests (ts)",
            "CREATE INDEX requests_model_ts ON requests (upstream_model, ts)",
            "CREATE INDEX requests_provider_ts ON requests (provider, ts)",
            "CREATE INDEX requests_key_ts ON requests (key_id, ts)",
            "CREATE INDEX requests_team_ts ON requests (team, ts)",
            """
            CREATE TABLE attempts (
                request_id TEXT COLLATE "C" NOT NULL,
                n INTEGER NOT NULL,
                tier INTEGER NOT NULL DEFAULT 0,
                provider TEXT COLLATE "C" NOT NULL,
                upstream_model TEXT COLLATE "C" NOT NULL,
                status INTEGER NOT NULL,
                error_type TEXT,
                input_tokens BIGINT NOT NULL DEFAULT 0,
                cached_input_tokens BIGINT NOT NULL DEFAULT 0,
                cache_write_tokens BIGINT NOT NULL DEFAULT 0,
                output_tokens BIGINT NOT NULL DEFAULT 0,
                reasoning_tokens BIGINT NOT NULL DEFAULT 0,
                cost_nano_usd BIGINT NOT NULL DEFAULT 0,
                latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
                verdict TEXT,
                usage_known BOOLEAN NOT NULL DEFAULT TRUE,
                PRIMARY KEY (request_id, n)
            )
            """,
            "CREATE INDEX attempts_provider ON attempts (provider, upstream_model)",
            """
            CREATE TABLE feedback (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                request_id TEXT COLLATE "C" NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                score DOUBLE PRECISION NOT NULL,
                model TEXT,
                route TEXT
            )
            """,
            "CREATE INDEX feedback_request ON feedback (request_id)",
        ),
    ),
    Migration(
        2,
        "the request's tags (a JSON array) for spend by tag",
        ("ALTER TABLE requests ADD COLUMN tags TEXT",),
    ),
    Migration(
        3,
        "dashboard: daily and latency rollups kept by trigger, indexes for its row queries",
        (
            *postgres_statements(),
            *DASHBOARD_INDEXES,
        ),
    ),
    Migration(
        4,
        "drop the percentiles' latency indexes (percentiles come from the histogram now)",
        # Version 3 created them until DASHBOARD_INDEXES lost them: a fresh schema never has
        # them, one migrated before does; both end the same. Qualified by the store's schema
        # (the first on the search_path): unqualified, a schema that lacks them would drop
        # another ledger's further down the path.
        ("""DO $$ BEGIN
            EXECUTE format('DROP INDEX IF EXISTS %1$I.requests_latency, %1$I.requests_ttft',
                           current_schema());
        END $$""",),
    ),
)

_LOCK_CLASS = 0x7468_7266  # "thrf": the first key of the two-key advisory lock (per schema)

_CREATE_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)
"""


def current_version(conn: psycopg.Connection[TupleRow], schema: str) -> int:
    """The highest applied version in ``schema``, 0 where thrifty never ran."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.schema_migrations', %s::text)) IS NOT NULL", (schema,)
    ).fetchone()
    if row is None or not row[0]:
        return 0
    found = conn.execute(
        sql.SQL("SELECT MAX(version) FROM {}.schema_migrations").format(sql.Identifier(schema))
    ).fetchone()
    return int(found[0] or 0) if found is not None else 0


def migrate(
    conn: psycopg.Connection[TupleRow],
    schema: str,
    *,
    where: str,
    migrations: tuple[Migration, ...] = PG_MIGRATIONS,
) -> int:
    """Create ``schema`` if needed and bring it up to the last of ``migrations``; return its
    version. ``conn`` must be in autocommit mode with ``schema`` first on its search_path;
    ``where`` names the database in errors (never with its password)."""
    latest = migrations[-1].version if migrations else 0
    version = current_version(conn, schema)  # without the lock: the common, up-to-date case
    _refuse_newer(version, latest, where)
    for migration in migrations:
        if migration.version > version:
            version = _apply(conn, schema, migration, latest, where)
    return version


def _apply(
    conn: psycopg.Connection[TupleRow],
    schema: str,
    migration: Migration,
    latest: int,
    where: str,
) -> int:
    with conn.transaction():
        # Held until commit: a replica starting at the same moment waits here, then sees the
        # version this one wrote and skips the migration.
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, schema))
        exists = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", (schema,)
        ).fetchone()
        if exists is None or not exists[0]:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(_CREATE_VERSIONS)
        version = current_version(conn, schema)
        _refuse_newer(version, latest, where)
        if version < migration.version:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) "
                "VALUES (%s, %s, %s)",
                (migration.version, migration.description, time.time()),
            )
            version = migration.version
    return version


def _refuse_newer(version: int, latest: int, where: str) -> None:
    if version > latest:
        raise ConfigError(
            f"ledger database {where} has schema version {version}, but this thrifty only "
            f"knows up to version {latest}: upgrade thrifty, or point the ledger at another "
            "schema"
        )
