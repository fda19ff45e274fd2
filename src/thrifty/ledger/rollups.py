"""Rollup tables the ledger keeps up to date by trigger, so the dashboard and ``thrifty
report`` read thousands of rollup rows instead of a million request rows.

- ``insights_daily``: one row per UTC day and combination of served deployment, requested
  model, route, policy, team, key, status and "more than one upstream call", with sums.
- ``insights_latency``: per UTC day and deployment, how many successful requests fell in each
  latency (or time-to-first-token) bucket; percentiles are interpolated inside its buckets
  (``thrifty.insights.percentiles``), with no per-row index to keep up.

PostgreSQL keeps them by statement triggers (one set-based upsert per ledger batch); SQLite by
``catch_up``, run by the dashboard and ``thrifty report`` before they read. Either way only rows
really inserted count (an ``ON CONFLICT DO NOTHING`` skip fires no trigger and takes no rowid),
so a retried ledger batch is not counted twice. Text dimensions hold ``''`` for NULL: a NULL
never equals another in a unique key, so an upsert on it would add a row per request. Owns
the DDL and the catch-up; the queries live in insights/.
"""

from __future__ import annotations

import sqlite3

DAILY_DIMS = ("day", "provider", "upstream_model", "requested_model", "route", "policy",
              "team", "key_id", "status", "multi")
DAILY_SUMS = ("requests", "cost_nano_usd", "input_tokens", "cached_input_tokens",
              "cache_write_tokens", "output_tokens", "reasoning_tokens", "latency_ms",
              "ttft_n", "ttft_ms", "answer_input_tokens", "answer_cached_tokens",
              "answer_cache_write_tokens", "answer_output_tokens")
_ANSWERS = DAILY_SUMS[-4:]
"""The tokens of the call that answered each answered request: what one call to a baseline
model would have processed (savings)."""
_ANSWER_FROM = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")
LATENCY_DIMS = ("day", "provider", "upstream_model", "metric", "bucket")

# Histogram buckets (ms): 10 ms wide below 1 s, 100 ms below 10 s, 1 s below 100 s, then one.
# ``insights.percentiles.bucket_bounds`` is the inverse; keep the two in step.
def bucket_sql(column: str, *, postgres: bool) -> str:
    """The latency bucket of ``column`` in SQL, an integer in both dialects (SQLite's CAST
    truncates, which is floor for the non-negative latencies)."""
    def div(by: int) -> str:
        if postgres:
            return f"floor({column} / {by})::int"
        return f"CAST({column} / {by} AS INTEGER)"

    return (f"(CASE WHEN {column} < 1000 THEN {div(10)} "
            f"WHEN {column} < 10000 THEN 90 + {div(100)} "
            f"WHEN {column} < 100000 THEN 180 + {div(1000)} ELSE 280 END)")


def route_label_sql(column: str, *, postgres: bool) -> str:
    """The route's name: ``x-thrifty-route`` is ``label;policy;via``, or ``direct``."""
    if postgres:
        return f"COALESCE(split_part({column}, ';', 1), '')"
    return (f"COALESCE(CASE WHEN instr({column}, ';') > 0 THEN substr({column}, 1, "
            f"instr({column}, ';') - 1) ELSE {column} END, '')")


def policy_sql(column: str, *, postgres: bool) -> str:
    """The routing policy, the second field of the route (``cascade``, ``fallback``...)."""
    if postgres:
        return f"COALESCE(split_part({column}, ';', 2), '')"
    rest = f"substr({column}, instr({column}, ';') + 1)"
    return (f"COALESCE(CASE WHEN instr({column}, ';') = 0 THEN '' "
            f"WHEN instr({rest}, ';') > 0 THEN substr({rest}, 1, instr({rest}, ';') - 1) "
            f"ELSE {rest} END, '')")


def _daily_values(row: str, *, postgres: bool) -> list[str]:
    """The rollup columns of one request row named ``row`` (NEW, or a transition table)."""
    day = f"floor({row}.ts / 86400)::bigint" if postgres else f"CAST({row}.ts / 86400 AS INTEGER)"
    multi = f"({row}.calls > 1)::int" if postgres else f"({row}.calls > 1)"
    return [
        day, f"COALESCE({row}.provider, '')", f"COALESCE({row}.upstream_model, '')",
        f"{row}.requested_model", route_label_sql(f"{row}.route", postgres=postgres),
        policy_sql(f"{row}.route", postgres=postgres), f"COALESCE({row}.team, '')",
        f"COALESCE({row}.key_id, '')", f"{row}.status", multi,
    ]


_CREATE_DAILY = """
CREATE TABLE insights_daily (
    day {int8} NOT NULL,
    provider TEXT {c} NOT NULL,
    upstream_model TEXT {c} NOT NULL,
    requested_model TEXT {c} NOT NULL,
    route TEXT {c} NOT NULL,
    policy TEXT {c} NOT NULL,
    team TEXT {c} NOT NULL,
    key_id TEXT {c} NOT NULL,
    status INTEGER NOT NULL,
    multi INTEGER NOT NULL,
    requests {int8} NOT NULL,
    cost_nano_usd {int8} NOT NULL,
    input_tokens {int8} NOT NULL,
    cached_input_tokens {int8} NOT NULL,
    cache_write_tokens {int8} NOT NULL,
    output_tokens {int8} NOT NULL,
    reasoning_tokens {int8} NOT NULL,
    latency_ms {real} NOT NULL,
    ttft_n {int8} NOT NULL,
    ttft_ms {real} NOT NULL,
    answer_input_tokens {int8} NOT NULL,
    answer_cached_tokens {int8} NOT NULL,
    answer_cache_write_tokens {int8} NOT NULL,
    answer_output_tokens {int8} NOT NULL,
    PRIMARY KEY (day, provider, upstream_model, requested_model, route, policy, team, key_id,
                 status, multi)
)"""
_CREATE_LATENCY = """
CREATE TABLE insights_latency (
    day {int8} NOT NULL,
    provider TEXT {c} NOT NULL,
    upstream_model TEXT {c} NOT NULL,
    metric TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n {int8} NOT NULL,
    PRIMARY KEY (day, provider, upstream_model, metric, bucket)
)"""

_DAILY_SUM_VALUES = ("{r}.cost_nano_usd", "{r}.input_tokens", "{r}.cached_input_tokens",
                     "{r}.cache_write_tokens", "{r}.output_tokens", "{r}.reasoning_tokens",
                     "{r}.latency_ms")
_ON_DAILY = (f"ON CONFLICT ({', '.join(DAILY_DIMS)}) DO UPDATE SET "
             + ", ".join(f"{c} = insights_daily.{c} + excluded.{c}" for c in DAILY_SUMS))
_ON_LATENCY = (f"ON CONFLICT ({', '.join(LATENCY_DIMS)}) DO UPDATE SET "
               "n = insights_latency.n + excluded.n")


DASHBOARD_INDEXES: tuple[str, ...] = (
    # the costliest requests: walk this index from the top, stop after a page
    "CREATE INDEX requests_cost ON requests (cost_nano_usd)",
    # savings: only requests with several calls need their answering attempt
    "CREATE INDEX requests_multi_ts ON requests (ts) WHERE calls > 1",
)
"""The dashboard's row queries' indexes, the same SQL on SQLite and PostgreSQL (each
dialect's migration that adds the rollups creates them). Percentiles have none on purpose:
a (deployment, latency) index puts every row's key at a random leaf page, ~2 extra pages
written per row, for exactness the histogram's interpolation does without."""


def sqlite_statements() -> tuple[str, ...]:
    """The tables and the catch-up watermark. SQLite keeps its rollups by ``catch_up``, not
    by trigger: per-row triggers cost the ledger writer ~35 us of CPU per row, four times
    the insert itself, where one set-based pass over new rows costs a few."""
    return (
        _CREATE_DAILY.format(int8="INTEGER", real="REAL", c=""),
        _CREATE_LATENCY.format(int8="INTEGER", c=""),
        "CREATE TABLE insights_watermark (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "rolled_up_to INTEGER NOT NULL)",
        "INSERT INTO insights_watermark (id, rolled_up_to) VALUES (1, 0)",
    )


_RANGE = "r.id > ? AND r.id <= ?"
def catch_up(conn: sqlite3.Connection, *, chunk: int = 100_000) -> int:
    """Fold the request rows written since the last call into the rollups; returns how
    many. Each chunk is one ``BEGIN IMMEDIATE`` transaction that re-reads the watermark, so
    any number of processes may call it: every row is counted exactly once. A request's
    attempts are committed with it, so its answering call is there too. ``conn`` must be in
    autocommit mode and may write."""
    statements = (*_backfill("requests", postgres=False, where=_RANGE),
                  _answers_update("attempts", postgres=False, where=_RANGE))
    done = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            low = int(conn.execute(
                "SELECT rolled_up_to FROM insights_watermark WHERE id = 1").fetchone()[0])
            newest = conn.execute("SELECT MAX(id) FROM requests").fetchone()[0]
            high = min(int(newest or 0), low + chunk)
            if high > low:
                for statement in statements:
                    conn.execute(statement, (low, high))
                conn.execute("UPDATE insights_watermark SET rolled_up_to = ? WHERE id = 1",
                             (high,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        done += max(0, high - low)
        if high >= int(newest or 0):
            return done


def _latency_insert(metric: str, value: str, row: str, *, postgres: bool,
                    source: str = "", count: str = "1", where: str = "") -> str:
    day, provider, model = _daily_values(row, postgres=postgres)[:3]
    group = (" GROUP BY 1, 2, 3, 5 ORDER BY 1, 2, 3, 5" if count != "1" else "")
    return (f"INSERT INTO insights_latency ({', '.join(LATENCY_DIMS)}, n) "
            f"SELECT {day}, {provider}, {model}, '{metric}', "
            f"{bucket_sql(value, postgres=postgres)}, {count} {source} "
            f"WHERE {row}.status < 400 AND {row}.provider IS NOT NULL "
            f"AND {value} IS NOT NULL{' AND ' + where if where else ''}{group} {_ON_LATENCY}")


def _backfill(table: str, *, postgres: bool, where: str = "true") -> tuple[str, ...]:
    """Rows of ``table`` (aliased ``r``) matching ``where`` summed into both rollups, in key
    order (so concurrent PostgreSQL writers lock rollup rows in the same order and cannot
    deadlock)."""
    dims = _daily_values("r", postgres=postgres)
    ttft_n = "COUNT(r.ttft_ms)"
    sums = ["COUNT(*)", *(f"SUM({v.format(r='r')})" for v in _DAILY_SUM_VALUES), ttft_n,
            "COALESCE(SUM(r.ttft_ms), 0)", *(f"SUM({_single_answer('r', t)})"
                                             for t in _ANSWER_FROM)]
    keys = ", ".join(str(i + 1) for i in range(len(DAILY_DIMS)))
    # (the WHERE also tells SQLite's parser that ON CONFLICT is not a join's ON)
    daily = (f"INSERT INTO insights_daily ({', '.join(DAILY_DIMS + DAILY_SUMS)}) "
             f"SELECT {', '.join(dims + sums)} FROM {table} r WHERE {where} GROUP BY {keys} "
             f"ORDER BY {keys} {_ON_DAILY}")
    return (daily, *(
        _latency_insert(metric, f"r.{col}", "r", postgres=postgres, source=f"FROM {table} r",
                        count="COUNT(*)", where="" if where == "true" else where)
        for metric, col in (("latency", "latency_ms"), ("ttft", "ttft_ms"))))


def _single_answer(row: str, column: str) -> str:
    """A request answered in one call: its own tokens are the answer's."""
    return f"(CASE WHEN {row}.calls <= 1 AND {row}.status < 400 THEN {row}.{column} ELSE 0 END)"


def _answers_update(attempts: str, *, postgres: bool, where: str = "true") -> str:
    """Add the tokens of the answering (``accepted``) call of each answered multi-call
    request in ``attempts`` to its rollup row. The request rows come first in a ledger batch,
    so their rollup rows exist (and, in PostgreSQL, are locked by this transaction already)."""
    sums = ", ".join(f"SUM(a.{t}) AS s{i}" for i, t in enumerate(_ANSWER_FROM))
    keys = ", ".join(str(i + 1) for i in range(len(DAILY_DIMS)))
    return ("UPDATE insights_daily SET "
            + ", ".join(f"{a} = insights_daily.{a} + x.s{i}" for i, a in enumerate(_ANSWERS))
            + f" FROM (SELECT {_named_dims('r', postgres=postgres)}, {sums} FROM {attempts} a "
            f"JOIN requests r ON r.request_id = a.request_id WHERE a.verdict = 'accepted' "
            f"AND r.calls > 1 AND r.status < 400 AND {where} GROUP BY {keys}) AS x "
            f"WHERE {_dims_match()}")


def _named_dims(row: str, *, postgres: bool) -> str:
    return ", ".join(f"{v} AS d{i}" for i, v in enumerate(_daily_values(row, postgres=postgres)))


def _dims_match() -> str:
    """Every key column of the rollup row equals its ``x.d<i>``: the whole primary key, so
    the update is one index seek."""
    return " AND ".join(f"insights_daily.{c} = x.d{i}" for i, c in enumerate(DAILY_DIMS))


def postgres_statements() -> tuple[str, ...]:
    """Tables, a statement trigger over the inserted rows (one upsert per batch, in key
    order) and the back-fill of rows already stored."""
    body = ";\n".join(_backfill("new_rows", postgres=True))
    return (
        _CREATE_DAILY.format(int8="BIGINT", real="DOUBLE PRECISION", c='COLLATE "C"'),
        _CREATE_LATENCY.format(int8="BIGINT", c='COLLATE "C"'),
        f"""CREATE FUNCTION insights_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {body};
            RETURN NULL;
        END $$""",
        "CREATE TRIGGER requests_insights AFTER INSERT ON requests "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION insights_rollup()",
        f"""CREATE FUNCTION insights_answers() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {_answers_update("new_attempts", postgres=True)};
            RETURN NULL;
        END $$""",
        "CREATE TRIGGER attempts_insights AFTER INSERT ON attempts "
        "REFERENCING NEW TABLE AS new_attempts FOR EACH STATEMENT "
        "EXECUTE FUNCTION insights_answers()",
        *_backfill("requests", postgres=True),
        _answers_update("attempts", postgres=True),
    )
