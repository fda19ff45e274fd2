"""Two `thrifty serve` processes sharing one PostgreSQL (keys, ledger) and one Redis (limit
counters), in front of one `thrifty fake-provider` process: a virtual key's USD budget hit by
500 concurrent requests spread over both replicas is never overspent, refuses only what could
not fit, and its Redis counters settle to the ledger's sum exactly; a requests-per-minute
limit is shared, not doubled; a key's own budgets live in the shared counters too, and a
request that fits its reservation never settles above the budget (the reservation bounds the
prompt from above). Real services on 127.0.0.1 (PostgreSQL 5432, db ``test``, user
``postgres``; Redis 6379); skipped only when one is not listening. Each run uses its own
schema and key prefix and removes them; every process is stopped by its PID."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from tests.services import free_port, listening

from thrifty.core.estimate import max_prompt_tokens
from thrifty.limits.model import Limit, window_bounds
from thrifty.limits.redis_counters import RedisCounters
from thrifty.pricing.cost import to_nano_usd

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
FAKE_KEY = "sk-fake-openai-0123456789"
MASTER = "sk-master-two-replicas-0123456789"
PRICE_IN, PRICE_OUT = Decimal("2.50"), Decimal("10.00")  # USD per million tokens
MAX_TOKENS = 48  # the fake's filler replies run 20-80 words: many are cut at 48, many not
N_REQUESTS, CONCURRENCY = 500, 100
REFUSAL = re.compile(r"^budget (\S+) cannot cover this request: \$([0-9.]+) of \$([0-9.]+) "
                     r"used or held, the request may cost up to \$([0-9.]+)$")



pytestmark = [
    pytest.mark.skipif(not listening(5432),
                       reason="nothing listens on 127.0.0.1:5432: start PostgreSQL (db 'test', "
                              "user 'postgres', trust auth) to run the two-replica tests"),
    pytest.mark.skipif(not listening(6379),
                       reason="nothing listens on 127.0.0.1:6379: start Redis "
                              "(redis-server --bind 127.0.0.1 --port 6379) to run them"),
]



class Overshot(AssertionError):
    """More was spent or let through than a limit allows."""



# -- the processes ----------------------------------------------------------------------------

def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url}: the process exited with {proc.returncode}:\n"
                                 + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never became ready:\n" + log.read_text()[-3000:])


@dataclass
class Cluster:
    tmp: Path
    schema: str
    prefix: str
    fake_port: int = 0
    replicas: list[str] = field(default_factory=list)
    """Base URLs of replica A and replica B."""
    procs: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def spawn(self, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "thrifty.cli.main", *args], env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc

    def start(self, rules: Sequence[dict[str, object]], latency_ms: float = 0.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.pop("THRIFTY_MASTER_KEY", None)
        self.fake_port = free_port()
        fake = self.spawn("fake", "fake-provider", "--wire", "openai", "--port",
                          str(self.fake_port), "--api-key", FAKE_KEY, "--latency-ms",
                          str(latency_ms), env=env)
        wait_ready(f"http://127.0.0.1:{self.fake_port}/_fake/stats", fake, self.tmp / "fake.log")
        cfg = self.tmp / "thrifty.yaml"  # JSON is YAML
        cfg.write_bytes(orjson.dumps(self.config(rules)))
        env["THRIFTY_MASTER_KEY"] = MASTER
        started = []
        for name in ("a", "b"):
            port = free_port()
            proc = self.spawn(name, "serve", "--config", str(cfg), "--port", str(port), env=env)
            started.append((proc, port, self.tmp / f"{name}.log"))
        for proc, port, log in started:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log)
            self.replicas.append(f"http://127.0.0.1:{port}")

    def config(self, rules: Sequence[dict[str, object]]) -> dict[str, Any]:
        return {
            "server": {"request_timeout_s": 30},
            "providers": {"openai": {"base_url": f"http://127.0.0.1:{self.fake_port}/v1",
                                     "api_key": FAKE_KEY}},
            "models": {"priced": {"provider": "openai", "model": "gpt-4o-mini",
                                  "price": {"input": str(PRICE_IN), "output": str(PRICE_OUT)}}},
            "keys": {"backend": "postgres", "dsn": PG_DSN, "schema_name": self.schema},
            "limits": {"backend": "redis", "redis_url": REDIS_URL,
                       "redis_prefix": self.prefix, "rules": list(rules)},
            "ledger": {"backend": "postgres", "dsn": PG_DSN, "pg_schema": self.schema},
        }

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process still running (replicas flush their ledger and settle), by
        PID; a process that does not stop within 15 s is killed. Returns the exit codes."""
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for proc, log in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            codes[log.stem] = proc.returncode
        return codes


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    tag = uuid.uuid4().hex[:12]
    c = Cluster(tmp_path, schema=f"thrifty_2r_{tag}", prefix=f"thrifty:test2r:{tag}:")
    try:
        yield c
    finally:
        c.stop()
        _drop_schema(c.schema)
        _delete_prefix(c.prefix)


def _drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def ledger_rows(schema: str, key_id: str) -> list[tuple[str, int, int]]:
    """``(request_id, status, cost_nano_usd)`` of every ledger row of ``key_id``."""
    import psycopg
    from psycopg import sql

    query = sql.SQL("SELECT request_id, status, cost_nano_usd FROM {} WHERE key_id = %s"
                    ).format(sql.Identifier(schema, "requests"))
    with psycopg.connect(PG_DSN) as conn:
        return [(str(r), int(s), int(c)) for r, s, c in conn.execute(query, (key_id,))]


# -- the load ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    index: int
    status: int
    request_id: str
    retry_after: str | None
    body: dict[str, Any]


async def create_key(base: str, budgets: list[dict[str, object]]) -> tuple[str, str]:
    """A virtual key created through replica ``base``'s admin API: ``(id, secret)``."""
    async with aiohttp.ClientSession() as s, s.post(
            f"{base}/v1/thrifty/keys", headers={"authorization": f"Bearer {MASTER}"},
            data=orjson.dumps({"team": "proof", "budgets": budgets})) as r:
        doc = await r.json()
        assert r.status == 201, doc
        return str(doc["id"]), str(doc["key"])


def prompt(i: int) -> str:
    # varied lengths, so estimates (and maxima) differ from request to request
    return f"Request {i}: say something about budgets" + " please" * (i % 7)


async def fire(replicas: Sequence[str], secret: str, n: int, concurrency: int,
               max_tokens: int | None) -> list[Answer]:
    """``n`` chat requests, request i to replica i % 2, ``concurrency`` in flight at once."""
    sem = asyncio.Semaphore(concurrency)
    headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}

    async def one(s: aiohttp.ClientSession, i: int) -> Answer:
        body: dict[str, object] = {"model": "priced",
                                   "messages": [{"role": "user", "content": prompt(i)}]}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        async with sem, s.post(f"{replicas[i % len(replicas)]}/v1/chat/completions",
                               data=orjson.dumps(body), headers=headers) as r:
            rid = r.headers.get("x-thrifty-request-id")
            assert rid, f"request {i}: HTTP {r.status} without x-thrifty-request-id"
            return Answer(i, r.status, rid, r.headers.get("retry-after"),
                          orjson.loads(await r.read()))

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as s:
        async with asyncio.timeout(40):
            return await asyncio.gather(*(one(s, i) for i in range(n)))


def max_cost_nano(i: int) -> int:
    """What the gateway reserves for request ``i``: the most it may cost, its prompt bounded
    from above and ``MAX_TOKENS`` of output."""
    tokens = max_prompt_tokens({"messages": [{"role": "user", "content": prompt(i)}]})
    return to_nano_usd((tokens * PRICE_IN + MAX_TOKENS * PRICE_OUT) / 1_000_000)


def nano(usd: str) -> int:
    return int(Decimal(usd) * 1_000_000_000)


def wait_out_window_end(window_s: float, margin_s: float) -> None:
    """Start a burst at least ``margin_s`` before the window turns, so it lands in one."""
    left = window_s - time.time() % window_s
    if left < margin_s:
        time.sleep(left + 0.2)


# -- the tests --------------------------------------------------------------------------------

BUDGET_SOURCES = [
    pytest.param([{"resource": "requests", "window": "minute", "scope": "global",
                   "amount": 1_000_000}], id="with-a-config-rule"),
    pytest.param([], id="key-budget-only"),
]


@pytest.mark.parametrize("config_rules", BUDGET_SOURCES)
async def test_usd_budget_across_two_replicas_is_exact(
        cluster: Cluster, config_rules: list[dict[str, object]]) -> None:
    cluster.start(config_rules)
    maxima = [max_cost_nano(i) for i in range(N_REQUESTS)]
    budget = sum(maxima) * 4 // 10  # room for ~40% of the requests' maximum costs
    budget -= budget % 1000  # whole micro-dollars, for a readable decimal amount
    key_id, secret = await create_key(cluster.replicas[0], [
        {"resource": "usd", "window": "day", "amount": str(Decimal(budget) / 10**9)}])
    wait_out_window_end(86_400, 15)
    t_start = time.time()
    answers = await fire(cluster.replicas, secret, N_REQUESTS, CONCURRENCY, MAX_TOKENS)
    t_end = time.time()

    ok = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status != 200]
    assert ok and refused, f"{len(ok)} answered, {len(refused)} refused: the load must do both"
    limit_id = f"key={key_id}:usd:day"
    for a in refused:
        err = a.body["error"]
        assert (a.status, err["code"], err["type"]) == (429, "budget_exceeded",
                                                        "insufficient_quota"), a
        assert a.retry_after is not None and int(a.retry_after) >= 1
        m = REFUSAL.match(err["message"])
        assert m is not None, err["message"]
        name, used, amount, requested = m[1], nano(m[2]), nano(m[3]), nano(m[4])
        assert (name, amount) == (limit_id, budget)
        assert requested == maxima[a.index]  # the reservation is the request's maximum
        assert used + requested > budget, f"request {a.index} fitted but was refused: {a}"
    # settled costs are below the maxima: more than budget/max fit in the end
    assert len(ok) >= budget // max(maxima)

    codes = cluster.stop()  # replicas flush their ledger and finish settling on SIGTERM
    assert codes["a"] == 0 and codes["b"] == 0, codes
    rows = ledger_rows(cluster.schema, key_id)
    seen = [a.request_id for a in answers]
    assert len(set(seen)) == N_REQUESTS
    assert sorted(r for r, _, _ in rows) == sorted(seen)  # exactly one row per request
    statuses = {r: s for r, s, _ in rows}
    assert all(statuses[a.request_id] == a.status for a in answers)
    spent = sum(c for _, _, c in rows)
    assert spent > 0
    if spent > budget:
        raise Overshot(f"settled {spent} nano-USD against a budget of {budget}")
    assert all(c == 0 for _, s, c in rows if s == 429)

    limit = Limit("usd", "day", "key", key_id, budget)
    assert limit.id == limit_id
    counters = RedisCounters(REDIS_URL, prefix=cluster.prefix)
    try:
        usage = await counters.usage([limit], t_start)
        if window_bounds("day", t_end) != window_bounds("day", t_start):  # pragma: no cover
            usage += await counters.usage([limit], t_end)
    finally:
        await counters.aclose()
    settled = sum(s for _, s, _ in usage)
    reserved = sum(r for _, _, r in usage)
    assert (settled, reserved) == (spent, 0)


RPM_SOURCES = [
    pytest.param([{"resource": "requests", "window": "minute", "scope": "key", "value": "*",
                   "amount": 60}], [], id="config-rule"),
    pytest.param([], [{"resource": "requests", "window": "minute", "amount": 60}],
                 id="key-budget"),
]


@pytest.mark.parametrize(("config_rules", "key_budgets"), RPM_SOURCES)
async def test_requests_per_minute_are_shared_not_doubled(
        cluster: Cluster, config_rules: list[dict[str, object]],
        key_budgets: list[dict[str, object]]) -> None:
    cluster.start(config_rules)
    key_id, secret = await create_key(cluster.replicas[0], key_budgets)
    wait_out_window_end(60, 8)
    t_start = time.time()
    answers = await fire(cluster.replicas, secret, 150, 150, None)
    assert window_bounds("minute", time.time()) == window_bounds("minute", t_start)

    by_status = {s: [a for a in answers if a.status == s] for s in {a.status for a in answers}}
    # 75 requests went to each replica: counted apart, each would have let 60 through
    if len(by_status.get(200, [])) > 60:
        raise Overshot(f"{len(by_status[200])} requests answered against a limit of 60")
    assert sorted((s, len(v)) for s, v in by_status.items()) == [(200, 60), (429, 90)]
    for a in by_status[429]:
        err = a.body["error"]
        assert (err["code"], err["type"]) == ("rate_limit_exceeded", "rate_limit_error"), a
        assert f"key={key_id}:requests:minute" in err["message"]
        assert a.retry_after is not None and 1 <= int(a.retry_after) <= 60

    codes = cluster.stop()
    assert codes["a"] == 0 and codes["b"] == 0, codes
    rows = ledger_rows(cluster.schema, key_id)
    assert sorted(r for r, _, _ in rows) == sorted(a.request_id for a in answers)
    assert sum(1 for _, s, _ in rows if s == 200) == 60


async def test_requests_that_fit_do_not_settle_above_the_budget(cluster: Cluster) -> None:
    # a config rule, so the key's budget lives in Redis; a slow provider, so every request
    # reserves before any settles
    cluster.start([{"resource": "requests", "window": "minute", "scope": "global",
                    "amount": 1_000_000}], latency_ms=1_000)
    text = "Say something about budgets, and be brief"  # 41 characters: 4k + 1
    n, max_tokens = 10, 16  # filler replies have >= 20 words: every one is cut at 16
    body = orjson.dumps({"model": "priced", "max_tokens": max_tokens,
                         "messages": [{"role": "user", "content": text}]})
    wait_out_window_end(86_400, 15)
    # what the gateway reserves for this request, read from a refusal (whatever the formula)
    _, probe = await create_key(cluster.replicas[0], [
        {"resource": "usd", "window": "day", "amount": "0"}])
    async with aiohttp.ClientSession() as s, s.post(
            f"{cluster.replicas[0]}/v1/chat/completions", data=body,
            headers={"authorization": f"Bearer {probe}"}) as r:
        refusal = REFUSAL.match((await r.json())["error"]["message"])
    assert r.status == 429 and refusal is not None
    held = nano(refusal[4])
    budget = n * held + 1_000  # room for exactly n reservations
    key_id, secret = await create_key(cluster.replicas[0], [
        {"resource": "usd", "window": "day", "amount": str(Decimal(budget) / 10**9)}])

    async def one(s: aiohttp.ClientSession, i: int) -> None:
        async with s.post(f"{cluster.replicas[i % 2]}/v1/chat/completions", data=body,
                          headers={"authorization": f"Bearer {secret}"}) as r:
            assert r.status == 200, await r.text()  # it fitted: n reservations <= budget

    async with aiohttp.ClientSession() as s:
        await asyncio.gather(*(one(s, i) for i in range(n)))
    assert cluster.stop()["a"] == 0
    rows = ledger_rows(cluster.schema, key_id)
    assert len(rows) == n
    spent = sum(c for _, _, c in rows)
    if spent > budget:
        raise Overshot(f"settled {spent} nano-USD against a budget of {budget}: each request "
                       f"reserved {held} and cost {spent // n}")
