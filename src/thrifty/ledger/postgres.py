"""The PostgreSQL ledger store (psycopg 3, sync), so gateway replicas on many hosts share one
ledger. Each batch is one transaction: binary COPY into session temp tables, then
INSERT ... SELECT ... ON CONFLICT DO NOTHING, which keeps a retried batch idempotent.

Owns the SQL for rows and spend queries; the schema lives in ``pg_migrations.py``. Blocking:
call it from a worker thread (``LedgerWriter`` does). Needs ``pip install 'thrifty[postgres]'``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from decimal import Decimal
from operator import attrgetter

from thrifty.errors import ConfigError
from thrifty.ledger.entry import AttemptRow, LedgerEntry
from thrifty.ledger.store import ERROR_STATUS, SpendRow, check_grouping
from thrifty.storage.connection import OwnedConnection

try:
    import psycopg
    from psycopg import sql
    from psycopg.rows import TupleRow
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ConfigError(
        "ledger.backend 'postgres' needs psycopg 3: pip install 'thrifty[postgres]'"
    ) from exc

from thrifty.ledger.pg_migrations import migrate

Connection = psycopg.Connection[TupleRow]

# Columns follow ``LedgerEntry``'s fields, so a new field needs only a migration that adds
# its column. ``user`` is reserved in PostgreSQL.
_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(LedgerEntry) if f.name != "attempts"
)
_COLUMNS = tuple({"user": "end_user"}.get(name, name) for name in _FIELDS)
_ATTEMPT_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AttemptRow))
_ATTEMPT_COLUMNS = ("request_id", *_ATTEMPT_FIELDS)
_row_values = attrgetter(*_FIELDS)
_attempt_values = attrgetter(*_ATTEMPT_FIELDS)

# Session temp tables shaped like the real ones (NOT NULL included, so a bad row fails the
# COPY); ON COMMIT DELETE ROWS empties them after every batch, and a rollback does too.
_REQUESTS_IN = "thrifty_requests_in"
_ATTEMPTS_IN = "thrifty_attempts_in"

# Fixed SQL per grouping (never built from user text); meanings are documented on
# ``store.SPEND_GROUPINGS``. Groups sort bytewise (COLLATE "C"), as SQLite does.
_GROUP_SQL = {
    "model": (
        "CASE WHEN upstream_model IS NULL THEN '(unrouted) ' || requested_model "
        "ELSE COALESCE(provider, '(unknown)') || '/' || upstream_model END"
    ),
    "requested": "requested_model",
    "provider": "COALESCE(provider, '(unrouted)')",
    "day": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "key": "COALESCE(key_id, '(no key)')",
    "team": "COALESCE(team, '(no team)')",
    "tag": "tag.value",
    "status": "CAST(status AS TEXT)",
}
_CHRONOLOGICAL = frozenset({"day", "status"})

ModelStatsRow = tuple[str, str, int, float | None, float | None, float | None, float]


class PostgresLedger(OwnedConnection[Connection]):
    """A ``LedgerStore`` in one PostgreSQL schema, created and migrated on open. Replicas may
    share it. A lost connection is reopened on the next call (the failed call raises, and
    ``LedgerWriter`` retries the batch). It keeps temp tables and its search_path on the
    session: connect directly or through PgBouncer in session mode, not transaction mode.

    >>> store = PostgresLedger("postgresql://postgres@127.0.0.1/test", schema="thrifty")
    >>> store.write_batch([LedgerEntry("req-1", 1.0, "m", "p", "m", 200)])
    >>> store.count()
    1
    """

    def __init__(
        self, dsn: str, *, schema: str = "public", connect_timeout_s: float = 10.0
    ) -> None:
        self.schema = schema
        self.where = f"schema {schema}"
        """The database and schema, for messages; never the password."""
        self.schema_version = 0
        self._dsn = dsn
        self._connect_timeout_s = connect_timeout_s
        super().__init__()  # the lock and the closed flag
        self._types: dict[str, list[int]] = {}
        self._conn = self._open(migrate_schema=True)

    def _open(self, *, migrate_schema: bool) -> Connection:
        conn = psycopg.connect(
            self._dsn,
            autocommit=True,  # every transaction below is explicit
            connect_timeout=max(1, round(self._connect_timeout_s)),
            application_name="thrifty-ledger",
        )
        try:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            if migrate_schema:
                info = conn.info
                self.where = f"postgresql://{info.host}:{info.port}/{info.dbname} {self.where}"
                self.schema_version = migrate(conn, self.schema, where=self.where)
            self._types = _create_staging(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> Connection:
        """The live connection; a broken one (server restart, network cut) is replaced. Call
        with ``_lock`` held."""
        if self._conn.broken:
            self._conn.close()
            self._conn = self._open(migrate_schema=False)
        return self._conn

    def write_batch(self, entries: Sequence[LedgerEntry]) -> None:
        if not entries:
            return
        attempts = [(e.request_id, *_attempt_values(a)) for e in entries for a in e.attempts]
        with self._lock:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                _copy(cur, _REQUESTS_IN, _COLUMNS, self._types[_REQUESTS_IN],
                      map(_row_values, entries))
                cur.execute(_insert_from(_REQUESTS_IN, "requests", _COLUMNS, "request_id"))
                if attempts:
                    _copy(cur, _ATTEMPTS_IN, _ATTEMPT_COLUMNS, self._types[_ATTEMPTS_IN],
                          attempts)
                    cur.execute(
                        _insert_from(_ATTEMPTS_IN, "attempts", _ATTEMPT_COLUMNS, "request_id, n")
                    )

    def get(self, request_id: str) -> LedgerEntry | None:
        query = f"SELECT {', '.join(_COLUMNS)} FROM requests WHERE request_id = %s"
        with self._lock:
            row = self._connection().execute(query, (request_id,)).fetchone()
        if row is None:
            return None
        return LedgerEntry(**dict(zip(_FIELDS, row, strict=True)))

    def attempts(self, request_id: str) -> list[AttemptRow]:
        """Every upstream call of one request, in order (empty for an unknown id)."""
        query = (
            f"SELECT {', '.join(_ATTEMPT_FIELDS)} FROM attempts WHERE request_id = %s ORDER BY n"
        )
        with self._lock:
            rows = self._connection().execute(query, (request_id,)).fetchall()
        return [AttemptRow(*row) for row in rows]

    def recent_model_stats(self, since: float) -> list[ModelStatsRow]:
        """Per deployment since ``since``, from its attempts: (provider, upstream_model,
        attempts, mean latency ms of successes, mean time to first token of the requests it
        answered, mean output tokens of successes, error rate). Seeds routing stats."""
        query = """
            SELECT a.provider, a.upstream_model, COUNT(*),
                   AVG(a.latency_ms) FILTER (WHERE a.status < 400),
                   AVG(r.ttft_ms) FILTER (WHERE a.status < 400),
                   AVG(a.output_tokens) FILTER (WHERE a.status < 400),
                   AVG(CASE WHEN a.status >= 400 AND a.status != 499 THEN 1.0 ELSE 0.0 END)
            FROM attempts a JOIN requests r ON r.request_id = a.request_id
            WHERE r.ts >= %s GROUP BY a.provider, a.upstream_model
        """
        with self._lock:
            rows = self._connection().execute(query, (float(since),)).fetchall()
        return [
            (str(p), str(m), int(n), _float(lat), _float(ttft), _float(out), float(err))
            for p, m, n, lat, ttft, out, err in rows
        ]

    def count(self) -> int:
        with self._lock:
            row = self._connection().execute("SELECT COUNT(*) FROM requests").fetchone()
        return int(row[0]) if row is not None else 0

    def add_feedback(self, request_id: str, ts: float, score: float, model: str | None,
                     route: str | None) -> None:
        with self._lock:
            self._connection().execute(
                "INSERT INTO feedback (request_id, ts, score, model, route) "
                "VALUES (%s, %s, %s, %s, %s)",
                (request_id, float(ts), float(score), model, route),
            )

    def spend(self, by: str, since: float | None, until: float | None = None) -> list[SpendRow]:
        query, params = spend_query(by, since, until)
        with self._lock:
            rows = self._connection().execute(query, params).fetchall()
        return [SpendRow.from_db(row) for row in rows]


# a request with two tags counts in both groups; untagged requests form their own group
_PG_TAG_JOIN = """, jsonb_array_elements_text(COALESCE(requests.tags::jsonb,
                  '["(no tag)"]'::jsonb)) AS tag(value)"""


def spend_query(by: str, since: float | None, until: float | None) -> tuple[str, list[float]]:
    """The SQL and parameters ``PostgresLedger.spend`` runs (exposed for EXPLAIN)."""
    group = _GROUP_SQL[check_grouping(by)]
    where, params = _time_filter(since, until)
    order = "grp" if by in _CHRONOLOGICAL else "cost DESC, requests DESC, grp"
    query = f"""
        SELECT ({group}) COLLATE "C" AS grp, COUNT(*) AS requests,
               COUNT(*) FILTER (WHERE status >= {ERROR_STATUS}),
               SUM(input_tokens), SUM(cached_input_tokens), SUM(cache_write_tokens),
               SUM(output_tokens), SUM(reasoning_tokens), SUM(cost_nano_usd) AS cost,
               AVG(latency_ms), MAX(latency_ms)
        FROM requests {_PG_TAG_JOIN if by == "tag" else ""} {where}
        GROUP BY grp ORDER BY {order}
    """
    return query, params


def _create_staging(conn: Connection) -> dict[str, list[int]]:
    """Create this session's staging tables; return each one's column type OIDs by name."""
    types: dict[str, list[int]] = {}
    for staging, table, columns in (
        (_REQUESTS_IN, "requests", _COLUMNS),
        (_ATTEMPTS_IN, "attempts", _ATTEMPT_COLUMNS),
    ):
        conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        rows = conn.execute(
            "SELECT attname, atttypid::int FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (f"pg_temp.{staging}",),
        ).fetchall()
        by_name = {str(name): int(oid) for name, oid in rows}
        missing = [c for c in columns if c not in by_name]
        if missing:
            raise ConfigError(
                f"ledger table {table} has no column {', '.join(missing)}: LedgerEntry has a "
                "field without a migration; add one to pg_migrations.PG_MIGRATIONS"
            )
        types[staging] = [by_name[c] for c in columns]
    return types


def _copy(
    cur: psycopg.Cursor[TupleRow],
    table: str,
    columns: Sequence[str],
    types: Sequence[int],
    rows: Iterable[Sequence[object]],
) -> None:
    """Binary COPY of ``rows`` into ``table``; ``types`` come from the table itself, so a
    migration that changes a column type needs no change here."""
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _insert_from(staging: str, table: str, columns: Sequence[str], key: str) -> str:
    names = ", ".join(columns)
    return (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} "
        f"ON CONFLICT ({key}) DO NOTHING"
    )


def _time_filter(since: float | None, until: float | None) -> tuple[str, list[float]]:
    clauses: list[str] = []
    params: list[float] = []
    if since is not None:
        clauses.append("ts >= %s")
        params.append(float(since))
    if until is not None:
        clauses.append("ts < %s")
        params.append(float(until))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _float(value: float | Decimal | None) -> float | None:
    return None if value is None else float(value)

