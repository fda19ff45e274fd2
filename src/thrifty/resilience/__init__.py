"""Keeping requests away from failing deployments: circuit breakers (``breaker``), retry
timing (``retry``), providers' rate-limit headroom (``headroom``) and the stores that hold
them per deployment (``health`` in memory, ``redis_health`` shared between replicas). Policy
here is pure; only the stores keep state, and only ``redis_health`` does I/O.
"""

from thrifty.resilience.breaker import (
    BreakerConfig,
    BreakerState,
    ErrorClass,
    Phase,
    allow,
    classify,
    cooldown_for,
    on_failure,
    on_success,
)
from thrifty.resilience.headroom import Headroom, parse_headroom, should_avoid
from thrifty.resilience.health import DeploymentHealth, HealthStore, MemoryHealth
from thrifty.resilience.redis_health import RedisHealth
from thrifty.resilience.retry import RetryPolicy, backoff, next_delay

__all__ = [
    "BreakerConfig",
    "BreakerState",
    "DeploymentHealth",
    "ErrorClass",
    "Headroom",
    "HealthStore",
    "MemoryHealth",
    "Phase",
    "RedisHealth",
    "RetryPolicy",
    "allow",
    "backoff",
    "classify",
    "cooldown_for",
    "next_delay",
    "on_failure",
    "on_success",
    "parse_headroom",
    "should_avoid",
]
