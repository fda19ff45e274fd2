"""Fill a SQLite ledger with realistic traffic, fast: raw executemany into the migrated
schema (the same columns ``SQLiteLedger`` writes), for ``dashboard_1m.py`` and for looking
at the dashboard with a lot of data.

The traffic: 8 teams with 60 keys, three routes (a cheap alias with fallback, a cascade that
escalates to a premium tier, direct calls to a premium model), costs priced from the shipped
catalog, a few percent of errors and a slow provider, so every panel has something to show.
"""

from __future__ import annotations

import math
import random
import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from thrifty.ledger.sqlite import SQLiteLedger
from thrifty.pricing.catalog import shipped_catalog

DAY = 86_400.0

# (provider, model, median latency ms): provider names as the gateway would log them
DEPLOYMENTS = {
    "mini": ("openai", "gpt-4o-mini", 700.0),
    "haiku": ("anthropic", "claude-haiku-4-5", 900.0),
    "flash": ("gemini", "gemini-2.5-flash", 600.0),
    "deepseek": ("deepseek", "deepseek-v4-flash", 1_400.0),
    "gpt4o": ("openai", "gpt-4o", 1_600.0),
    "sonnet": ("anthropic", "claude-sonnet-4-6", 2_000.0),
}
TEAMS = ("search", "support", "research", "growth", "billing", "platform", "mobile", "data")


@dataclass(frozen=True, slots=True)
class Seeded:
    rows: int
    attempts: int
    start: float
    end: float


def seed(path: str, rows: int, *, end: float, days: float = 30.0, seed: int = 7,
         batch: int = 20_000) -> Seeded:
    """Write ``rows`` requests spread over ``days`` before ``end`` into the ledger at ``path``
    (created and migrated first)."""
    SQLiteLedger(path).close()  # create + migrate
    rng = random.Random(seed)
    prices = _prices()
    keys = [(f"key_{i:04d}", TEAMS[i % len(TEAMS)]) for i in range(60)]
    key_weights = [1.0 / (i + 1) ** 0.8 for i in range(len(keys))]  # a few heavy keys
    start = end - days * DAY
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    attempts_total = 0
    try:
        n = 0
        while n < rows:
            size = min(batch, rows - n)
            reqs, atts = [], []
            for i in range(n, n + size):
                ts = start + (end - start) * (i + rng.random()) / rows
                r, a = _request(rng, i, ts, rng.choices(keys, key_weights)[0], prices)
                reqs.append(r)
                atts.extend(a)
            conn.execute("BEGIN")
            conn.executemany(_INSERT_REQUEST, reqs)
            conn.executemany(_INSERT_ATTEMPT, atts)
            conn.execute("COMMIT")
            attempts_total += len(atts)
            n += size
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return Seeded(rows, attempts_total, start, end)


_REQUEST_COLUMNS = (
    "request_id", "ts", "requested_model", "provider", "upstream_model", "status", "stream",
    "key_id", "team", "tags", "input_tokens", "cached_input_tokens", "output_tokens",
    "reasoning_tokens", "cost_nano_usd", "latency_ms", "ttft_ms", "error_type", "route",
    "usage_known", "trace", "calls",
)
_INSERT_REQUEST = (f"INSERT INTO requests ({', '.join(_REQUEST_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(_REQUEST_COLUMNS))})")
_ATTEMPT_COLUMNS = ("request_id", "n", "tier", "provider", "upstream_model", "status",
                    "error_type", "input_tokens", "cached_input_tokens", "output_tokens",
                    "cost_nano_usd", "latency_ms", "verdict")
_INSERT_ATTEMPT = (f"INSERT INTO attempts ({', '.join(_ATTEMPT_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(_ATTEMPT_COLUMNS))})")


def _prices() -> dict[str, tuple[float, float, float]]:
    cat = shipped_catalog()
    out = {}
    for name, (provider, model, _) in DEPLOYMENTS.items():
        info = cat.get(provider, model)
        assert info is not None, f"{provider}/{model} is not in the shipped catalog"
        p = info.price
        out[name] = (float(p.input), float(p.output), float(p.cached_input))
    return out


def _cost_nano(price: tuple[float, float, float], inp: int, cached: int, out: int) -> int:
    p_in, p_out, p_cached = price
    usd = Decimal((inp - cached) * p_in + cached * p_cached + out * p_out) / 1_000_000
    return int(usd * 1_000_000_000)


def _plan(rng: random.Random) -> tuple[str, str, list[str]]:
    """(requested model, route, deployments tried in order) for one request."""
    roll = rng.random()
    if roll < 0.45:
        return "cheap", "cheap;fallback", (["flash", "mini"] if rng.random() < 0.03
                                           else ["flash"])
    if roll < 0.75:
        tiers = ["mini", "sonnet"] if rng.random() < 0.22 else ["mini"]
        return "smart", "smart;cascade", tiers
    if roll < 0.85:
        return "gpt-4o", "direct", ["gpt4o"]
    if roll < 0.93:
        return "haiku", "direct", ["haiku"]
    return "deepseek", "direct", ["deepseek"]


def _request(rng: random.Random, i: int, ts: float, key: tuple[str, str],
             prices: dict[str, tuple[float, float, float]]) -> tuple[tuple[object, ...],
                                                                      list[tuple[object, ...]]]:
    requested, route, tried = _plan(rng)
    rid = f"thr-{i:09d}"
    inp = int(rng.lognormvariate(math.log(900), 0.9)) + 20
    cached = int(inp * 0.6) if rng.random() < 0.2 else 0
    out = int(rng.lognormvariate(math.log(250), 0.8)) + 5
    status, error = _status(rng)
    attempts, cost, latency = [], 0, 0.0
    for n, name in enumerate(tried):
        provider, model, median = DEPLOYMENTS[name]
        last = n == len(tried) - 1
        a_status = status if last else (200 if route.endswith("cascade") else 503)
        a_cost = _cost_nano(prices[name], inp, cached, out) if a_status < 400 else 0
        a_latency = rng.lognormvariate(math.log(median), 0.5)
        verdict = "accepted" if last and status < 400 else (
            "escalated: format" if "cascade" in route and not last else None)
        attempts.append((rid, n, n if "cascade" in route else 0, provider, model, a_status,
                         None if a_status < 400 else "upstream_error", inp, cached, out,
                         a_cost, round(a_latency, 3), verdict))
        cost += a_cost
        latency += a_latency
    provider, model, _ = DEPLOYMENTS[tried[-1]]
    stream = rng.random() < 0.4
    ttft = round(latency * rng.uniform(0.1, 0.3), 3) if stream and status < 400 else None
    trace = ('{"calls": [' + ", ".join(
        f'{{"tier": {a[2]}, "model": "{a[4]}", "provider": "{a[3]}", "status": {a[5]}}}'
        for a in attempts) + f'], "plan": {{"route": "{route}"}}}}')
    calls = len(attempts)
    tokens = inp * calls, cached * calls, out * calls
    row = (rid, ts, requested, provider, model, status, int(stream), key[0], key[1],
           '["batch-jobs"]' if rng.random() < 0.1 else None, tokens[0], tokens[1], tokens[2],
           0, cost, round(latency, 3), ttft, error, route, 1, trace, calls)
    return row, attempts if calls > 1 else attempts[:1]


def _status(rng: random.Random) -> tuple[int, str | None]:
    roll = rng.random()
    if roll < 0.970:
        return 200, None
    if roll < 0.980:
        return 429, "rate_limit_exceeded"
    if roll < 0.990:
        return 502, "upstream_error"
    if roll < 0.995:
        return 499, "client_closed"
    return 400, "invalid_request"
