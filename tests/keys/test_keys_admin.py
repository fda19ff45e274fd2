"""The key admin API over real HTTP (aiohttp TestServer on 127.0.0.1): the guard, each route,
OpenAI-shaped 400s naming the param, and secrets shown only by create and rotate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, ConfigDict

from thrifty.core.clock import FakeClock
from thrifty.errors import AuthenticationFailed
from thrifty.keys.cache import KeyCache, authenticate
from thrifty.keys.model import BudgetRule
from thrifty.keys.sqlite_keys import SQLiteKeys
from thrifty.server.admin import add_admin_routes
from thrifty.server.auth import check_master_key

MASTER = "master-key-for-tests"
ADMIN = {"authorization": f"Bearer {MASTER}"}


async def master_guard(request: web.Request) -> None:
    check_master_key(request.headers, MASTER.encode())


def no_negative_limits(rules: Sequence[BudgetRule]) -> None:
    for rule in rules:
        limit = rule.get("limit")
        if not isinstance(limit, int | float) or limit < 0:
            raise ValueError("each rule needs a 'limit' of zero or more")


@dataclass
class Admin:
    client: TestClient[web.Request, web.Application]
    store: SQLiteKeys
    cache: KeyCache
    clock: FakeClock

    async def call(self, method: str, path: str, *, json: Any = None, data: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        resp = await self.client.request(method, path, json=json, data=data,
                                         headers=ADMIN if headers is None else headers)
        return resp.status, await resp.json()


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    clock = FakeClock()
    store = SQLiteKeys(tmp_path / "keys.db", clock=clock)
    cache = KeyCache(store, clock=clock)
    app = web.Application()
    add_admin_routes(app, store, master_guard, cache=cache, clock=clock,
                     check_budgets=no_negative_limits)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Admin(client, store, cache, clock)
    finally:
        await client.close()
        await store.close()


def error(body: dict[str, Any]) -> dict[str, Any]:
    err = body["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    return dict(err)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/thrifty/keys"), ("GET", "/v1/thrifty/keys"),
     ("GET", "/v1/thrifty/keys/key_x"), ("PATCH", "/v1/thrifty/keys/key_x"),
     ("POST", "/v1/thrifty/keys/key_x/rotate"), ("POST", "/v1/thrifty/keys/key_x/revoke")],
)
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}])
async def test_every_route_is_guarded(admin: Admin, method: str, path: str,
                                      headers: dict[str, str]) -> None:
    status, body = await admin.call(method, path, json={"team": "t"}, headers=headers)
    assert status == 401 and error(body)["type"] == "authentication_error"
    assert await admin.store.list(include_revoked=True) == []


async def test_create_shows_the_secret_once(admin: Admin) -> None:
    resp = await admin.client.post("/v1/thrifty/keys", headers=ADMIN, json={
        "team": "search", "name": "ci", "allowed_models": ["cheap"], "tags": ["prod"],
        "metadata": {"owner": "ana"}, "expires_at": admin.clock.now() + 86_400,
        "budgets": [{"resource": "cost_usd", "window": "day", "limit": 5}]})
    body = await resp.json()
    assert resp.status == 201 and resp.headers["cache-control"] == "no-store"
    secret = body.pop("key")
    assert secret.startswith("tk-") and "hash" not in body
    assert body["prefix"] == secret[:7] + "…" and body["status"] == "active"
    assert body["allowed_models"] == ["cheap"] and body["metadata"] == {"owner": "ana"}
    assert body["budgets"] == [{"resource": "cost_usd", "window": "day", "limit": 5}]
    stored = await admin.store.get_by_plaintext(secret)
    assert stored is not None and stored.id == body["id"]
    # Afterwards no answer holds the secret or its hash.
    for path in ("/v1/thrifty/keys", f"/v1/thrifty/keys/{body['id']}"):
        text = await (await admin.client.get(path, headers=ADMIN)).text()
        assert secret not in text and stored.hash not in text and body["id"] in text


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({}, "team"),
        ({"team": ""}, "team"),
        ({"team": 7}, "team"),
        ({"team": "t", "colour": "red"}, "colour"),
        ({"team": "t", "allowed_models": "cheap"}, "allowed_models"),
        ({"team": "t", "allowed_models": ["ok", 3]}, "allowed_models.1"),
        ({"team": "t", "metadata": {"k": 1}}, "metadata.k"),
        ({"team": "t", "expires_at": "tomorrow"}, "expires_at"),
        ({"team": "t", "expires_at": 1_600_000_000}, "expires_at"),
        ({"team": "t", "budgets": [{"limit": -1}]}, "budgets"),
        ({"team": "t", "budgets": {"limit": 1}}, "budgets"),
    ],
)
async def test_bad_create_bodies_name_the_param(admin: Admin, payload: dict[str, Any],
                                                param: str) -> None:
    status, body = await admin.call("POST", "/v1/thrifty/keys", json=payload)
    err = error(body)
    assert status == 400 and err["type"] == "invalid_request_error"
    assert err["param"] == param and param.split(".")[0] in err["message"]
    assert await admin.store.list() == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
async def test_bodies_that_are_not_objects(admin: Admin, raw: bytes) -> None:
    status, body = await admin.call("POST", "/v1/thrifty/keys", data=raw)
    assert status == 400 and error(body)["code"] == "invalid_json"


async def test_list_filters_by_team_and_revocation(admin: Admin) -> None:
    a, _ = await admin.store.create("search")
    admin.clock.advance(1)
    b, _ = await admin.store.create("ads")
    await admin.store.revoke(b.id)
    status, body = await admin.call("GET", "/v1/thrifty/keys")
    assert status == 200 and body["object"] == "list"
    assert [k["id"] for k in body["data"]] == [a.id]
    _, body = await admin.call("GET", "/v1/thrifty/keys?include_revoked=true")
    assert [(k["id"], k["status"]) for k in body["data"]] == [(a.id, "active"),
                                                             (b.id, "revoked")]
    _, body = await admin.call("GET", "/v1/thrifty/keys?team=ads&include_revoked=true")
    assert [k["id"] for k in body["data"]] == [b.id]
    status, body = await admin.call("GET", "/v1/thrifty/keys?include_revoked=yes")
    assert status == 400 and error(body)["param"] == "include_revoked"


async def test_unknown_ids_are_404(admin: Admin) -> None:
    for method, suffix in (("GET", ""), ("POST", "/rotate"), ("POST", "/revoke"),
                           ("PATCH", "")):
        status, body = await admin.call(method, f"/v1/thrifty/keys/key_nope{suffix}",
                                        json={"name": "x"})
        assert status == 404 and error(body)["code"] == "key_not_found"


async def test_rotate_returns_a_new_secret_and_the_old_one_fails_at_once(admin: Admin) -> None:
    key, old = await admin.store.create("t", name="ci")
    await authenticate({"authorization": f"Bearer {old}"}, admin.cache, admin.clock.now())
    resp = await admin.client.post(f"/v1/thrifty/keys/{key.id}/rotate", headers=ADMIN)
    body = await resp.json()
    assert resp.status == 200 and resp.headers["cache-control"] == "no-store"
    assert body["id"] == key.id and body["name"] == "ci" and body["key"] != old
    with pytest.raises(AuthenticationFailed):  # the cache was told, not left to expire
        await authenticate({"authorization": f"Bearer {old}"}, admin.cache, admin.clock.now())
    new = await authenticate({"authorization": f"Bearer {body['key']}"}, admin.cache,
                             admin.clock.now())
    assert new.id == key.id


async def test_revoke_applies_at_once_and_is_final(admin: Admin) -> None:
    key, secret = await admin.store.create("t")
    await authenticate({"x-api-key": secret}, admin.cache, admin.clock.now())
    status, body = await admin.call("POST", f"/v1/thrifty/keys/{key.id}/revoke")
    assert status == 200 and body["status"] == "revoked" and "key" not in body
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await authenticate({"x-api-key": secret}, admin.cache, admin.clock.now())
    status, body = await admin.call("POST", f"/v1/thrifty/keys/{key.id}/rotate")
    assert status == 400 and error(body)["code"] == "key_revoked"
    status, body = await admin.call("PATCH", f"/v1/thrifty/keys/{key.id}", json={"name": "x"})
    assert status == 400 and error(body)["code"] == "key_revoked"


async def test_patch_changes_what_it_names(admin: Admin) -> None:
    key, _ = await admin.store.create("t", name="ci", allowed_models=("cheap",),
                                      expires_at=admin.clock.now() + 60)
    status, body = await admin.call("PATCH", f"/v1/thrifty/keys/{key.id}",
                                    json={"allowed_models": [], "expires_at": None})
    assert status == 200, body
    assert body["allowed_models"] == [] and body["expires_at"] is None and body["name"] == "ci"
    stored = await admin.store.get(key.id)
    assert stored.allowed_models == () and stored.expires_at is None
    status, body = await admin.call("PATCH", f"/v1/thrifty/keys/{key.id}", json={})
    assert status == 400 and "Nothing to change" in error(body)["message"]
    status, body = await admin.call("PATCH", f"/v1/thrifty/keys/{key.id}", json={"team": "x"})
    assert status == 400 and error(body)["param"] == "team"
    status, body = await admin.call("PATCH", f"/v1/thrifty/keys/{key.id}",
                                    json={"budgets": [{"limit": -5}]})
    assert status == 400 and error(body)["param"] == "budgets"
    assert (await admin.store.get(key.id)).budgets == ()


async def test_patch_is_seen_by_the_request_path_at_once(admin: Admin) -> None:
    key, secret = await admin.store.create("t")
    headers = {"authorization": f"Bearer {secret}"}
    assert (await authenticate(headers, admin.cache, admin.clock.now())).allowed_models == ()
    await admin.call("PATCH", f"/v1/thrifty/keys/{key.id}", json={"allowed_models": ["cheap"]})
    got = await authenticate(headers, admin.cache, admin.clock.now())
    assert got.allowed_models == ("cheap",)


async def test_an_unexpected_failure_is_a_500_in_the_openai_shape(
    admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(admin.store, "list", broken)
    resp = await admin.client.get("/v1/thrifty/keys", headers=ADMIN)
    body = await resp.json()
    assert resp.status == 500 and "disk on fire" not in body["error"]["message"]
    assert resp.headers["x-thrifty-request-id"] in body["error"]["message"]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: Literal["minute", "day"]


async def test_a_pydantic_budget_check_is_one_clear_line(tmp_path: Path) -> None:
    def check(rules: Sequence[BudgetRule]) -> None:
        for rule in rules:
            _Rule.model_validate(rule)

    store = SQLiteKeys(tmp_path / "k.db")
    app = web.Application()
    add_admin_routes(app, store, master_guard, check_budgets=check)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.post("/v1/thrifty/keys", headers=ADMIN,
                                 json={"team": "t", "budgets": [{"window": "week"}]})
        err = error(await resp.json())
    await store.close()
    assert resp.status == 400 and err["param"] == "budgets"
    assert err["message"].startswith("'budgets': Input should be 'minute' or 'day'")
    assert err["message"].endswith("at 'window'") and "\n" not in err["message"]
