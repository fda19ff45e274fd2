"""PostgreSQL ledger migrations against the real server on 127.0.0.1:5432: applied once, even
by two processes starting together; a newer schema is refused; a failing one rolls back. Each
test gets its own schema, dropped afterwards. Skipped only when nothing listens on the port."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from tests.services import listening

from thrifty.errors import ConfigError
from thrifty.ledger.entry import AttemptRow, LedgerEntry
from thrifty.ledger.migrations import Migration
from thrifty.ledger.pg_migrations import PG_MIGRATIONS, current_version, migrate
from thrifty.ledger.postgres import PostgresLedger

DSN = os.environ.get("THRIFTY_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
Conn = psycopg.Connection[tuple[object, ...]]



pytestmark = pytest.mark.skipif(
    not listening(5432),
    reason="nothing listens on 127.0.0.1:5432; start PostgreSQL with a database 'test' that "
           "user postgres can reach (or set THRIFTY_TEST_PG_DSN)",
)


@pytest.fixture
def admin() -> Iterator[Conn]:
    with psycopg.connect(DSN, autocommit=True) as conn:
        yield conn


@pytest.fixture
def schema(admin: Conn) -> Iterator[str]:
    name = f"thrifty_test_{uuid.uuid4().hex[:12]}"
    yield name
    admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def conn(schema: str) -> Iterator[Conn]:
    """A connection set up as the store sets up its own: autocommit, schema on the path."""
    with psycopg.connect(DSN, autocommit=True) as opened:
        opened.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        yield opened


def _applied(admin: Conn, schema: str) -> list[tuple[object, ...]]:
    query = sql.SQL("SELECT version, applied_at FROM {}.schema_migrations ORDER BY version")
    return admin.execute(query.format(sql.Identifier(schema))).fetchall()


def test_versions_are_strictly_increasing() -> None:
    versions = [m.version for m in PG_MIGRATIONS]
    assert versions == sorted(set(versions))
    assert versions[0] == 1


def test_fresh_schema_is_migrated_once_and_reopen_is_a_no_op(admin: Conn, schema: str) -> None:
    with PostgresLedger(DSN, schema=schema) as store:
        assert store.schema_version == PG_MIGRATIONS[-1].version
    first = _applied(admin, schema)
    assert [v for v, _ in first] == [m.version for m in PG_MIGRATIONS]
    with PostgresLedger(DSN, schema=schema) as store:
        assert store.schema_version == PG_MIGRATIONS[-1].version
    assert _applied(admin, schema) == first  # same rows, same applied_at: nothing re-ran


def test_any_schema_name_works_and_is_created_once(admin: Conn) -> None:
    name = f"Thrifty Ledger-{uuid.uuid4().hex[:8]}"  # needs quoting everywhere
    try:
        for _ in range(2):
            with PostgresLedger(DSN, schema=name) as store:
                store.write_batch([LedgerEntry(f"r{store.count()}", 1.0, "m", "p", "m", 200)])
        with PostgresLedger(DSN, schema=name) as store:
            assert store.count() == 2
        assert [v for v, _ in _applied(admin, name)] == [m.version for m in PG_MIGRATIONS]
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_newer_schema_is_refused_without_leaking_the_password(
    admin: Conn, schema: str
) -> None:
    PostgresLedger(DSN, schema=schema).close()
    admin.execute(
        sql.SQL("INSERT INTO {}.schema_migrations (version, description, applied_at) "
                "VALUES (999, 'from the future', 0)").format(sql.Identifier(schema))
    )
    # Trust auth ignores the password; it is here to prove the error does not repeat it.
    with_password = DSN.replace("postgres@", "postgres:hunter2-secret@", 1)
    with pytest.raises(ConfigError, match="schema version 999") as info:
        PostgresLedger(with_password, schema=schema)
    assert "upgrade thrifty" in info.value.message
    assert schema in info.value.message
    assert "hunter2" not in info.value.message


def test_only_new_migrations_run_on_an_existing_schema(conn: Conn, schema: str) -> None:
    assert current_version(conn, schema) == 0
    latest = PG_MIGRATIONS[-1].version
    assert migrate(conn, schema, where="test") == latest
    conn.execute("INSERT INTO requests (request_id, ts, requested_model, status) "
                 "VALUES ('r1', 1.0, 'm', 200)")
    extra = Migration(latest + 1, "add a column", ("ALTER TABLE requests ADD COLUMN note TEXT",))
    assert migrate(conn, schema, where="test", migrations=(*PG_MIGRATIONS, extra)) == latest + 1
    assert conn.execute("SELECT request_id, note FROM requests").fetchall() == [("r1", None)]
    with pytest.raises(ConfigError):  # the old code refuses rather than guessing
        migrate(conn, schema, where="test")


def test_a_failing_migration_rolls_back_entirely(conn: Conn, schema: str) -> None:
    latest = migrate(conn, schema, where="test")
    broken = Migration(latest + 1, "half broken", ("CREATE TABLE half_made (id INTEGER)",
                                                   "NOT SQL"))
    with pytest.raises(psycopg.errors.SyntaxError):
        migrate(conn, schema, where="test", migrations=(*PG_MIGRATIONS, broken))
    assert current_version(conn, schema) == latest
    assert conn.execute("SELECT to_regclass('half_made')").fetchone() == (None,)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_new_entry_field_without_a_column_is_a_config_error(
    conn: Conn, schema: str
) -> None:
    migrate(conn, schema, where="test")
    conn.execute("ALTER TABLE requests DROP COLUMN team")  # as if LedgerEntry grew a field
    with pytest.raises(ConfigError, match="no column team"):
        PostgresLedger(DSN, schema=schema)


def _open_and_write(schema: str, worker: int, start: multiprocessing.synchronize.Barrier) -> None:
    start.wait()  # both processes find the fresh schema at the same moment
    store = PostgresLedger(DSN, schema=schema)
    for first in range(0, 2_000, 100):
        store.write_batch([
            LedgerEntry(f"w{worker}-{i}", float(i), "m", "p", "m", 200, cost_nano_usd=i,
                        attempts=(AttemptRow(0, 0, "p", "m", 200, cost_nano_usd=i),))
            for i in range(first, first + 100)
        ])
    store.close()


def test_two_processes_starting_together_migrate_once(admin: Conn, schema: str) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_open_and_write, args=(schema, w, start)) for w in (1, 2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert [v for v, _ in _applied(admin, schema)] == [m.version for m in PG_MIGRATIONS]
    with PostgresLedger(DSN, schema=schema) as store:
        assert store.count() == 4_000
        [row] = store.spend("model", None)
        assert row.cost_nano_usd == 2 * sum(range(2_000))


# What version 3 created until the percentiles stopped seeking exact values (version 4).
OLD_PERCENTILE_INDEXES = (
    "CREATE INDEX requests_latency ON requests "
    "(provider, upstream_model, latency_ms, ts, status, team, key_id)",
    "CREATE INDEX requests_ttft ON requests "
    "(provider, upstream_model, ttft_ms, ts, status, team, key_id) WHERE ttft_ms IS NOT NULL",
)


def _indexes(admin: Conn, schema: str) -> list[tuple[str, str]]:
    """Each index's name and definition, the schema's name blanked out."""
    rows = admin.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s "
                         "ORDER BY indexname", (schema,)).fetchall()
    quoted = sql.Identifier(schema).as_string(admin)
    return [(str(n), str(d).replace(quoted + ".", "").replace(schema + ".", ""))
            for n, d in rows]


def test_a_schema_migrated_before_v4_loses_the_percentile_indexes(
    admin: Conn, conn: Conn, schema: str
) -> None:
    assert migrate(conn, schema, where="test", migrations=PG_MIGRATIONS[:3]) == 3
    for statement in OLD_PERCENTILE_INDEXES:
        conn.execute(statement)
    conn.execute("INSERT INTO requests (request_id, ts, requested_model, status) "
                 "VALUES ('r1', 1.0, 'm', 200)")
    assert {"requests_latency", "requests_ttft"} <= {n for n, _ in _indexes(admin, schema)}
    with PostgresLedger(DSN, schema=schema) as store:  # the store migrates on open
        assert store.schema_version == 4
        assert store.count() == 1
    fresh = f"thrifty_test_{uuid.uuid4().hex[:12]}"
    try:
        PostgresLedger(DSN, schema=fresh).close()
        migrated = _indexes(admin, schema)
        assert not {n for n, _ in migrated} & {"requests_latency", "requests_ttft"}
        assert {"requests_cost", "requests_multi_ts"} <= {n for n, _ in migrated}
        assert migrated == _indexes(admin, fresh)
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(fresh)))


def test_v4_drops_only_its_own_schemas_indexes(admin: Conn, schema: str) -> None:
    """A fresh schema has no percentile index to drop; another ledger's, further down the
    search_path, must survive."""
    other = f"thrifty_test_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(other)))
        admin.execute(sql.SQL("CREATE TABLE {}.requests (latency_ms REAL)").format(
            sql.Identifier(other)))
        admin.execute(sql.SQL("CREATE INDEX requests_latency ON {}.requests (latency_ms)")
                      .format(sql.Identifier(other)))
        with psycopg.connect(DSN, autocommit=True) as opened:
            opened.execute(sql.SQL("SET search_path TO {}, {}").format(
                sql.Identifier(schema), sql.Identifier(other)))
            assert migrate(opened, schema, where="test") == PG_MIGRATIONS[-1].version
        assert [n for n, _ in _indexes(admin, other)] == ["requests_latency"]
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(other)))
