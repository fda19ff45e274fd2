"""Virtual keys through the running gateway: created by the admin API (master key only),
used by clients, scoped to models, revoked at once in this process; the ledger records key
and team."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
from tests.conftest import Fakes, GatewayFactory, standard_config

MASTER = "mk-operator-0123456789"
MSG = [{"role": "user", "content": "echo: hi"}]


async def call(url: str, method: str, path: str, key: str | None = None,
               body: Any = None) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as s, s.request(
            method, f"{url}{path}", headers=headers,
            data=orjson.dumps(body) if body is not None else None) as r:
        return r.status, await r.json()


async def test_keys_end_to_end(fakes: Fakes, gateway_factory: GatewayFactory,
                               tmp_path: Path) -> None:
    cfg = standard_config(fakes, tmp_path / "ledger.db")
    cfg["server"] = {"master_key": MASTER}
    cfg["keys"] = {"backend": "sqlite", "path": str(tmp_path / "keys.db")}
    gw = await gateway_factory(cfg)
    url = gw.v1

    status, _ = await call(url, "POST", "/thrifty/keys", key="tk-not-the-master",
                           body={"team": "research"})
    assert status == 401
    status, created = await call(url, "POST", "/thrifty/keys", key=MASTER,
                                 body={"team": "research", "name": "ci",
                                       "allowed_models": ["oa-mini", "cheap"]})
    assert status == 201, created
    secret, key_id = created["key"], created["id"]
    assert secret.startswith("tk-")

    status, reply = await call(url, "POST", "/chat/completions", key=secret,
                               body={"model": "oa-mini", "messages": MSG})
    assert status == 200 and reply["choices"][0]["message"]["content"] == "hi"
    status, err = await call(url, "POST", "/chat/completions", key=secret,
                             body={"model": "an-haiku", "messages": MSG})
    assert status == 403 and err["error"]["code"] == "model_not_allowed"
    status, err = await call(url, "POST", "/chat/completions",
                             body={"model": "oa-mini", "messages": MSG})
    assert status == 401 and err["error"]["type"] == "authentication_error"
    status, err = await call(url, "POST", "/chat/completions", key="tk-" + "x" * 43,
                             body={"model": "oa-mini", "messages": MSG})
    assert status == 401 and "tk-xxxx" not in orjson.dumps(err).decode()
    status, _ = await call(url, "POST", "/chat/completions", key=MASTER,
                           body={"model": "an-haiku", "messages": MSG})
    assert status == 200  # the operator may use everything

    status, _ = await call(url, "POST", f"/thrifty/keys/{key_id}/revoke", key=MASTER)
    assert status == 200
    status, err = await call(url, "POST", "/chat/completions", key=secret,
                             body={"model": "oa-mini", "messages": MSG})
    assert status == 401 and err["error"]["code"] == "key_revoked"

    rows = await gw.ledger_rows()
    mine = [r for r in rows if r["key_id"] == key_id]
    assert [r["status"] for r in mine] == [200, 403]  # a refused key is nobody's
    assert all(r["team"] == "research" for r in mine)
    assert sum(1 for r in rows if r["status"] == 401) == 3
    spend = gw.gateway.ledger.store.spend("team", None)  # type: ignore[union-attr]
    assert {row.group for row in spend} >= {"research", "(no team)"}


async def test_invalid_key_budgets_are_refused_at_creation(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    cfg = standard_config(fakes, tmp_path / "ledger.db")
    cfg["server"] = {"master_key": MASTER}
    cfg["keys"] = {"backend": "sqlite", "path": str(tmp_path / "keys.db")}
    gw = await gateway_factory(cfg)
    status, err = await call(gw.v1, "POST", "/thrifty/keys", key=MASTER, body={
        "team": "t", "budgets": [{"resource": "usd", "window": "fortnight", "amount": "1"}]})
    assert status == 400 and "window" in err["error"]["message"]
    status, ok = await call(gw.v1, "POST", "/thrifty/keys", key=MASTER, body={
        "team": "t", "budgets": [{"resource": "usd", "window": "day", "amount": "1"}]})
    assert status == 201 and ok["key"].startswith("tk-")


async def test_team_budgets_through_the_admin_api_apply_to_every_key_of_the_team(
        fakes: Fakes, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    cfg = standard_config(fakes, tmp_path / "ledger.db")
    cfg["server"] = {"master_key": MASTER}
    cfg["keys"] = {"backend": "sqlite", "path": str(tmp_path / "keys.db")}
    gw = await gateway_factory(cfg)
    url = gw.v1
    status, err = await call(url, "PUT", "/thrifty/teams/ops/budgets", key=MASTER,
                             body={"budgets": [{"resource": "requests", "window": "eon",
                                                "amount": 1}]})
    assert status == 400 and err["error"]["param"] == "budgets"
    status, _ = await call(url, "PUT", "/thrifty/teams/ops/budgets", key="tk-nope",
                           body={"budgets": []})
    assert status == 401
    status, put = await call(url, "PUT", "/thrifty/teams/ops/budgets", key=MASTER,
                             body={"budgets": [{"resource": "requests", "window": "minute",
                                                "amount": 3}]})
    assert status == 200 and put["budgets"][0]["amount"] == 3
    status, got = await call(url, "GET", "/thrifty/teams/ops/budgets", key=MASTER)
    assert got["budgets"] == put["budgets"]
    secrets = []
    for name in ("a", "b"):
        _, created = await call(url, "POST", "/thrifty/keys", key=MASTER,
                                body={"team": "ops", "name": name})
        secrets.append(created["key"])
    statuses = [(await call(url, "POST", "/chat/completions", key=secrets[i % 2],
                            body={"model": "oa-mini", "messages": MSG}))[0] for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]  # three for the team, whichever key
    _, other = await call(url, "POST", "/thrifty/keys", key=MASTER, body={"team": "dev"})
    status, _ = await call(url, "POST", "/chat/completions", key=other["key"],
                           body={"model": "oa-mini", "messages": MSG})
    assert status == 200  # another team is not limited
