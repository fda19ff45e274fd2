"""Keys, budgets and rate limits: rules from config, the pure reservation arithmetic, and the
counters that hold it (in memory, in a SQLite file shared by worker processes; Redis lives in
``thrifty.limits.redis_counters`` and is imported only when configured).

A request reserves its worst case before it runs, then settles what it really used:

    limits = applicable(rules, RequestScope(key_id="k1", team="research"))
    result = await counters.reserve(request_id, wants_for(limits, 900, 1_000, cost_nano), now)
    ...
    await counters.settle(request_id, actual_for(limits, usage, cost_nano))
"""

from thrifty.limits.decide import actual_for, decide, merge_wants, settle_amount, wants_for
from thrifty.limits.memory import MemoryCounters
from thrifty.limits.model import (
    DEFAULT_RESERVATION_TTL_S,
    DEFAULT_RETAIN_S,
    Counters,
    Hold,
    Limit,
    Refusal,
    ReserveResult,
    Resource,
    Scope,
    Window,
    window_bounds,
)
from thrifty.limits.rules import EACH, LimitRule, RequestScope, applicable, parse_rules
from thrifty.limits.sqlite_counters import SQLiteCounters

__all__ = [
    "DEFAULT_RESERVATION_TTL_S",
    "DEFAULT_RETAIN_S",
    "EACH",
    "Counters",
    "Hold",
    "Limit",
    "LimitRule",
    "MemoryCounters",
    "Refusal",
    "RequestScope",
    "ReserveResult",
    "Resource",
    "SQLiteCounters",
    "Scope",
    "Window",
    "actual_for",
    "applicable",
    "decide",
    "merge_wants",
    "parse_rules",
    "settle_amount",
    "wants_for",
    "window_bounds",
]
