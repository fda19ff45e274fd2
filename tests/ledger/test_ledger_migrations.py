"""Schema migrations: applied once, re-open is a no-op, a newer schema is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from thrifty.errors import ConfigError
from thrifty.ledger.migrations import SQLITE_MIGRATIONS, Migration, current_version, migrate
from thrifty.ledger.sqlite import SQLiteLedger


def _applied(path: Path) -> list[tuple[int, float]]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    applied = [(int(v), float(t)) for v, t in rows]
    conn.close()
    return applied


def test_versions_are_strictly_increasing() -> None:
    versions = [m.version for m in SQLITE_MIGRATIONS]
    assert versions == sorted(set(versions))
    assert versions[0] == 1


def test_fresh_database_is_migrated_once_and_reopen_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SQLiteLedger(path) as store:
        assert store.schema_version == SQLITE_MIGRATIONS[-1].version
    first = _applied(path)
    assert [v for v, _ in first] == [m.version for m in SQLITE_MIGRATIONS]
    with SQLiteLedger(path) as store:
        assert store.schema_version == SQLITE_MIGRATIONS[-1].version
    assert _applied(path) == first  # same rows, same applied_at: nothing re-ran


def test_newer_schema_is_refused_with_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    SQLiteLedger(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) "
            "VALUES (999, 'from the future', 0)"
        )
    conn.close()
    with pytest.raises(ConfigError, match="schema version 999") as info:
        SQLiteLedger(path)
    assert "upgrade thrifty" in info.value.message


def test_only_new_migrations_run_on_an_existing_database() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert current_version(conn) == 0
    latest = SQLITE_MIGRATIONS[-1].version
    assert migrate(conn, where="test") == latest
    conn.execute("INSERT INTO requests (request_id, ts, requested_model, status) "
                 "VALUES ('r1', 1.0, 'm', 200)")
    extra = Migration(latest + 1, "add a column",
                      ("ALTER TABLE requests ADD COLUMN note TEXT",))
    assert migrate(conn, where="test", migrations=(*SQLITE_MIGRATIONS, extra)) == latest + 1
    assert conn.execute("SELECT request_id, note FROM requests").fetchall() == [("r1", None)]
    # Opening again with the old code now refuses rather than guessing.
    with pytest.raises(ConfigError):
        migrate(conn, where="test")


def test_a_failing_migration_rolls_back_entirely() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    latest = migrate(conn, where="test")
    broken = Migration(latest + 1, "half broken",
                       ("CREATE TABLE half_made (id INTEGER)", "NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, where="test", migrations=(*SQLITE_MIGRATIONS, broken))
    assert current_version(conn) == latest
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_made" not in tables
    assert not conn.in_transaction


# What version 7 created until the percentiles stopped seeking exact values (version 8).
OLD_PERCENTILE_INDEXES = (
    "CREATE INDEX requests_latency ON requests "
    "(provider, upstream_model, latency_ms, ts, status, team, key_id)",
    "CREATE INDEX requests_ttft ON requests "
    "(provider, upstream_model, ttft_ms, ts, status, team, key_id) WHERE ttft_ms IS NOT NULL",
)


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str | None]]:
    return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_a_database_migrated_before_v8_loses_the_percentile_indexes(tmp_path: Path) -> None:
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    assert migrate(fresh, where="fresh") == 8
    old = sqlite3.connect(tmp_path / "v7.db", isolation_level=None)
    assert migrate(old, where="v7", migrations=SQLITE_MIGRATIONS[:7]) == 7
    for statement in OLD_PERCENTILE_INDEXES:
        old.execute(statement)
    old.execute("INSERT INTO requests (request_id, ts, requested_model, status, latency_ms) "
                "VALUES ('r1', 1.0, 'm', 200, 12.5)")
    assert {"requests_latency", "requests_ttft"} <= {name for _, name, _ in _schema(old)}
    old.close()
    with SQLiteLedger(tmp_path / "v7.db") as store:  # the store migrates on open
        assert store.schema_version == 8
        assert store.count() == 1
    old = sqlite3.connect(tmp_path / "v7.db")
    names = {name for _, name, _ in _schema(old)}
    assert not names & {"requests_latency", "requests_ttft"}
    assert {"requests_cost", "requests_multi_ts"} <= names
    assert _schema(old) == _schema(fresh)
    old.close()
