"""The admin API for virtual keys (``/v1/thrifty/keys``): thin aiohttp handlers over a
``KeyStore``. Bodies are validated strictly and refused in the OpenAI error shape with the
offending ``param``; a plaintext key appears only in the create and rotate answers.

Authentication is the caller's: ``add_admin_routes`` takes the guard (the master-key check).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from thrifty.core.clock import Clock, SystemClock
from thrifty.core.ids import new_request_id
from thrifty.errors import InvalidRequest, ThriftyError
from thrifty.keys.cache import KeyCache
from thrifty.keys.model import UNSET, BudgetRule, KeyPatch, VirtualKey
from thrifty.keys.store import KeyStore

log = logging.getLogger("thrifty.server.admin")
KEYS_PATH = "/v1/thrifty/keys"
_JSON = "application/json"

Guard = Callable[[web.Request], Awaitable[None]]
"""Checks an admin request (the master key); raises a ``ThriftyError`` to refuse it."""
BudgetCheck = Callable[[Sequence[BudgetRule]], None]
"""Validates budget rules before they are stored; raises ``ValueError`` (a pydantic
``ValidationError`` is one) or ``InvalidRequest`` to refuse them."""
_Action = Callable[[web.Request], Awaitable[web.Response]]

_Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
_Text = Annotated[str, StringConstraints(max_length=200)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: _Text = ""
    allowed_models: Annotated[list[_Name], Field(max_length=500)] = []
    tags: Annotated[list[_Name], Field(max_length=100)] = []
    metadata: Annotated[dict[_Name, _Text], Field(max_length=100)] = {}
    expires_at: Annotated[float, Field(gt=0)] | None = None
    """Unix seconds; null for a key that never expires."""
    budgets: Annotated[list[dict[str, Any]], Field(max_length=100)] = []


class _CreateBody(_Settings):
    team: _Name
    role: Literal["inference", "read"] = "inference"
    """Fixed at creation: ``read`` keys sign in to the dashboard and cannot call the API."""


_M = TypeVar("_M", bound=_Settings)


class AdminHandlers:
    def __init__(self, store: KeyStore, guard: Guard, *, cache: KeyCache | None = None,
                 clock: Clock | None = None, check_budgets: BudgetCheck | None = None) -> None:
        self.store = store
        self.guard = guard
        self.cache = cache
        self.clock: Clock = clock or SystemClock()
        self.check_budgets = check_budgets

    async def create(self, request: web.Request) -> web.Response:
        body = self._valid(_CreateBody, await _json_object(request))
        key, secret = await self.store.create(
            body.team, name=body.name, allowed_models=body.allowed_models, tags=body.tags,
            metadata=body.metadata, expires_at=body.expires_at, budgets=body.budgets,
            role=body.role)
        return self._with_secret(key, secret, status=201)

    async def list(self, request: web.Request) -> web.Response:
        query = request.query
        include = query.get("include_revoked", "false").lower()
        if include not in ("true", "false"):
            raise InvalidRequest("'include_revoked' must be true or false",
                                 param="include_revoked", code="invalid_value")
        keys = await self.store.list(query.get("team"), include_revoked=include == "true")
        now = self.clock.now()
        return _json({"object": "list", "data": [k.public(now) for k in keys]})

    async def get(self, request: web.Request) -> web.Response:
        key = await self.store.get(request.match_info["key_id"])
        return _json(key.public(self.clock.now()))

    async def rotate(self, request: web.Request) -> web.Response:
        key, secret = await self.store.rotate(request.match_info["key_id"])
        self._forget(key)
        return self._with_secret(key, secret, status=200)

    async def revoke(self, request: web.Request) -> web.Response:
        key = await self.store.revoke(request.match_info["key_id"])
        self._forget(key)
        return _json(key.public(self.clock.now()))

    async def update(self, request: web.Request) -> web.Response:
        raw = await _json_object(request)
        body = self._valid(_Settings, raw)
        if not body.model_fields_set:
            raise InvalidRequest(
                f"Nothing to change: send one or more of {', '.join(_Settings.model_fields)}",
                code="invalid_value")
        key = await self.store.update(request.match_info["key_id"], _patch(body))
        self._forget(key)
        return _json(key.public(self.clock.now()))

    def route(self, action: _Action) -> _Action:
        """``action`` behind the guard, answering every failure in the OpenAI shape."""
        async def handle(request: web.Request) -> web.Response:
            try:
                await self.guard(request)
                return await action(request)
            except ThriftyError as exc:
                return _error(exc)
            except Exception:
                rid = new_request_id()
                log.exception("unexpected error in admin request %s", rid)
                return _error(ThriftyError(f"The admin API hit an unexpected error; see the "
                                           f"gateway log for request {rid}"), rid)

        return handle

    def _valid(self, model: type[_M], raw: dict[str, object]) -> _M:
        try:
            body = model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(part) for part in first["loc"]) or None
            why = first["msg"]
            if first["type"] == "extra_forbidden":
                why = f"no such field; the fields are {', '.join(model.model_fields)}"
            raise InvalidRequest(f"'{param}': {why}", param=param, code="invalid_value") from None
        if body.expires_at is not None and body.expires_at <= self.clock.now():
            raise InvalidRequest("'expires_at' is in the past (it is in Unix seconds)",
                                 param="expires_at", code="invalid_value")
        if "budgets" in body.model_fields_set:
            self._check(body.budgets)
        return body

    def _check(self, budgets: Sequence[dict[str, Any]]) -> None:
        if self.check_budgets is None:
            return
        try:
            self.check_budgets(budgets)
        except ValidationError as exc:  # e.g. LimitRule.model_validate: one line, not 20
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidRequest(f"'budgets': {first['msg']}" + (f" at '{where}'" if where
                                 else ""), param="budgets", code="invalid_value") from None
        except ValueError as exc:
            raise InvalidRequest(f"'budgets': {exc}", param="budgets",
                                 code="invalid_value") from None

    async def set_team_budgets(self, request: web.Request) -> web.Response:
        """``PUT /v1/thrifty/teams/{team}/budgets`` ``{"budgets": [rule, ...]}``: replace
        the team's budgets (rules without scope; they apply to the whole team)."""
        raw = await _json_object(request)
        budgets = raw.get("budgets")
        if set(raw) != {"budgets"} or not isinstance(budgets, list) or not all(
                isinstance(b, dict) for b in budgets):
            raise InvalidRequest("send {\"budgets\": [{\"resource\": ..., \"window\": ..., "
                                 "\"amount\": ...}, ...]}", param="budgets",
                                 code="invalid_value")
        self._check(budgets)
        team = request.match_info["team"]
        await self.store.set_team_budgets(team, budgets)
        if self.cache is not None:
            self.cache.forget_team(team)
        return _json({"team": team, "budgets": budgets})

    async def get_team_budgets(self, request: web.Request) -> web.Response:
        team = request.match_info["team"]
        return _json({"team": team, "budgets": list(await self.store.team_budgets(team))})

    def _with_secret(self, key: VirtualKey, secret: str, *, status: int) -> web.Response:
        doc = {**key.public(self.clock.now()), "key": secret}
        # The only answers holding a secret: tell every cache on the way not to keep them.
        return _json(doc, status=status, headers={"cache-control": "no-store"})

    def _forget(self, key: VirtualKey) -> None:
        if self.cache is not None:
            self.cache.forget(key.id)


def add_admin_routes(
    app: web.Application,
    store: KeyStore,
    guard: Guard,
    *,
    cache: KeyCache | None = None,
    clock: Clock | None = None,
    check_budgets: BudgetCheck | None = None,
) -> AdminHandlers:
    """Mount the key admin API on ``app``. Call it before any catch-all route (aiohttp matches
    in order). Pass the request path's ``cache`` so changes made here apply in this process at
    once; other processes see them within the cache TTL."""
    h = AdminHandlers(store, guard, cache=cache, clock=clock, check_budgets=check_budgets)
    item = f"{KEYS_PATH}/{{key_id}}"
    app.router.add_post(KEYS_PATH, h.route(h.create))
    app.router.add_get(KEYS_PATH, h.route(h.list))
    app.router.add_get(item, h.route(h.get))
    app.router.add_patch(item, h.route(h.update))
    app.router.add_post(f"{item}/rotate", h.route(h.rotate))
    app.router.add_post(f"{item}/revoke", h.route(h.revoke))
    team = "/v1/thrifty/teams/{team}/budgets"
    app.router.add_put(team, h.route(h.set_team_budgets))
    app.router.add_get(team, h.route(h.get_team_budgets))
    return h


def _patch(body: _Settings) -> KeyPatch:
    """The fields the PATCH body sent; the others stay ``UNSET`` (null is a value only for
    ``expires_at``: never expire)."""
    given = body.model_fields_set
    return KeyPatch(
        name=body.name if "name" in given else UNSET,
        allowed_models=tuple(body.allowed_models) if "allowed_models" in given else UNSET,
        tags=tuple(body.tags) if "tags" in given else UNSET,
        metadata=body.metadata if "metadata" in given else UNSET,
        expires_at=body.expires_at if "expires_at" in given else UNSET,
        budgets=tuple(body.budgets) if "budgets" in given else UNSET,
    )


async def _json_object(request: web.Request) -> dict[str, object]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
    return body


def _json(doc: object, *, status: int = 200, headers: dict[str, str] | None = None
          ) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, headers=headers,
                        content_type=_JSON)


def _error(exc: ThriftyError, request_id: str | None = None) -> web.Response:
    headers = {"x-thrifty-request-id": request_id or new_request_id(), **exc.headers()}
    return web.Response(body=orjson.dumps(exc.to_openai()), status=exc.status,
                        headers=headers, content_type=_JSON)

