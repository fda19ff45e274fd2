"""Who is calling: the master key (an operator), a virtual key (a team's client), or, on
loopback with neither configured, anyone. Builds the key store from config and mounts the
admin API behind the master key."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from thrifty.config.schema import KeysConfig
from thrifty.errors import AuthenticationFailed, PermissionDenied
from thrifty.server.auth import check_master_key, presented_key

if TYPE_CHECKING:
    from thrifty.keys.cache import KeyCache
    from thrifty.keys.model import VirtualKey
    from thrifty.keys.store import KeyStore


def open_key_store(cfg: KeysConfig) -> KeyStore | None:
    if cfg.backend == "sqlite":
        from thrifty.keys.sqlite_keys import SQLiteKeys

        return SQLiteKeys(cfg.path)
    if cfg.backend == "postgres":
        from thrifty.keys.postgres_keys import PostgresKeys

        if not cfg.dsn:
            from thrifty.errors import ConfigError

            raise ConfigError("keys.dsn: the postgres key store needs a DSN "
                              "(postgresql://user@host:5432/db)")
        return PostgresKeys(cfg.dsn, schema=cfg.schema_name)
    return None


class Caller:
    """Authenticates requests: the master key first (constant time), then virtual keys."""

    def __init__(self, master_key: bytes | None, cache: KeyCache | None) -> None:
        self.master_key = master_key
        self.cache = cache

    async def identify(self, headers: Mapping[str, str], now: float) -> VirtualKey | None:
        """The virtual key behind the request, or None for the operator / open loopback.
        ``headers`` look names up in lower case."""
        if self.cache is None:
            check_master_key(headers, self.master_key)
            return None
        presented = presented_key(headers)
        if (presented is not None and self.master_key is not None
                and hmac.compare_digest(presented.encode(), self.master_key)):
            return None
        from thrifty.keys.cache import authenticate

        key = await authenticate(headers, self.cache, now)
        if key.role != "inference":
            raise PermissionDenied(f"API key {key.id} is a read-only key: it signs in to the "
                                   "dashboard (/ui) and cannot call the API",
                                   code="read_only_key")
        return key

    async def operator(self, request: web.Request) -> None:
        """The admin API's guard: the master key, and nothing else."""
        if self.master_key is None:
            raise PermissionDenied("the admin API needs THRIFTY_MASTER_KEY to be set",
                                   code="admin_disabled")
        if presented_key(request.headers) is None:
            raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'",
                                       code="missing_api_key")
        check_master_key(request.headers, self.master_key)


_rules_cache: dict[tuple[str, str], tuple[object, ...]] = {}


async def caller_limit_rules(key: VirtualKey, cache: KeyCache) -> tuple[object, ...]:
    """The key's own budgets (scoped to the key) and its team's (scoped to the team), as
    limit rules, parsed once per content."""
    team = await cache.team_budgets(key.team)
    return (*scoped_rules("key", key.id, key.budgets),
            *scoped_rules("team", key.team, team))


def scoped_rules(scope: str, value: str, budgets: Sequence[Mapping[str, object]]
                 ) -> tuple[object, ...]:
    if not budgets:
        return ()
    import orjson

    from thrifty.limits.rules import parse_rules

    sig = (f"{scope}={value}",
           orjson.dumps([dict(b) for b in budgets], option=orjson.OPT_SORT_KEYS).decode())
    rules = _rules_cache.get(sig)
    if rules is None:
        scoped = [{**dict(b), "scope": scope, "value": value} for b in budgets]
        rules = tuple(parse_rules(scoped, where=f"budgets of {scope} {value}"))
        if len(_rules_cache) > 10_000:
            _rules_cache.clear()
        _rules_cache[sig] = rules
    return rules


def check_key_budgets(budgets: Sequence[Mapping[str, object]]) -> None:
    """Refuse a key's budgets at creation (400 naming the field), not at its first use."""
    from thrifty.errors import ConfigError
    from thrifty.limits.rules import parse_rules

    scoped = [{**dict(b), "scope": "key", "value": "check"} for b in budgets]
    try:
        parse_rules(scoped, where="budgets")
    except ConfigError as exc:
        raise ValueError(exc.message) from None
