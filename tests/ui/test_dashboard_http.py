"""The dashboard over real HTTP: who may see it (anonymous, wrong, inference, read and
master keys; sessions), that read keys cannot call the API, and that filters change the
numbers shown."""

from __future__ import annotations

import re

import aiohttp

from thrifty.ui.session import COOKIE, issue, session_secret, verify

from .conftest import MASTER, Dash


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def kpi(html: str, name: str) -> str:
    found = re.search(rf'id="kpi-{name}">([^<]+)<', html)
    assert found, f"no kpi-{name} on the page"
    return found[1]


async def test_anonymous_visitors_are_sent_to_sign_in(dash: Dash) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/ui", "/ui/health", "/ui/requests", "/ui/requests/thr-ui-0001"):
            async with s.get(dash.url + path, allow_redirects=False) as r:
                assert r.status == 303 and r.headers["location"] == "/ui/login", path
        async with s.get(dash.url + "/ui/login") as r:
            assert r.status == 200 and 'name="key"' in await r.text()


async def test_keys_presented_as_bearer(dash: Dash) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(dash.url + "/ui", headers=bearer("tk-" + "x" * 43)) as r:
            assert r.status == 401
        async with s.get(dash.url + "/ui", headers=bearer(dash.inference_key)) as r:
            assert r.status == 403 and "inference key" in await r.text()
        for key in (dash.read_key, MASTER):
            async with s.get(dash.url + "/ui", headers=bearer(key)) as r:
                html = await r.text()
                assert r.status == 200 and kpi(html, "spend").startswith("$")
                assert key not in html


async def test_read_keys_cannot_call_the_api(dash: Dash) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(dash.url + "/v1/chat/completions", json=body,
                          headers=bearer(dash.read_key)) as r:
            err = (await r.json())["error"]
            assert r.status == 403 and err["code"] == "read_only_key"
        async with s.get(dash.url + "/v1/models", headers=bearer(dash.read_key)) as r:
            assert r.status == 403


async def test_login_sets_a_strict_httponly_session(dash: Dash) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as s:
        async with s.post(dash.url + "/ui/login", data={"key": dash.inference_key},
                          allow_redirects=False) as r:
            assert r.status == 403 and COOKIE not in r.cookies
        async with s.post(dash.url + "/ui/login", data={"key": dash.read_key},
                          allow_redirects=False) as r:
            assert r.status == 303
            cookie = r.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age" in cookie
            assert dash.read_key not in cookie
        async with s.get(dash.url + "/ui/health") as r:
            assert r.status == 200 and "Health per deployment" in await r.text()
        await dash.keys.revoke(dash.read_key_id)  # the session dies with its key
        async with s.get(dash.url + "/ui/health", allow_redirects=False) as r:
            assert r.status == 303
        async with s.post(dash.url + "/ui/login", data={"key": MASTER},
                          allow_redirects=False) as r:
            assert r.status == 303
        async with s.post(dash.url + "/ui/logout", allow_redirects=False) as r:
            assert r.status == 303
        async with s.get(dash.url + "/ui", allow_redirects=False) as r:
            assert r.status == 303


async def test_forged_and_expired_sessions_are_refused(dash: Dash) -> None:
    secret = session_secret(MASTER.encode())
    assert verify(secret, issue(secret, "master", 1000.0), 1000.0 + 8 * 3600 + 1) is None
    assert verify(b"another secret", issue(secret, "master", 1000.0), 1001.0) is None
    forged = issue(b"not the gateway's", "master", 2e9)
    async with aiohttp.ClientSession(cookies={COOKIE: forged}) as s, s.get(
            dash.url + "/ui", allow_redirects=False) as r:
        assert r.status == 303


async def test_filters_change_the_numbers(dash: Dash) -> None:
    async with aiohttp.ClientSession(headers=bearer(MASTER)) as s:
        spends = {}
        for team in ("", "search", "support"):
            async with s.get(dash.url + f"/ui?window=7d&team={team}") as r:
                spends[team] = kpi(await r.text(), "spend")
        assert len(set(spends.values())) == 3
        async with s.get(dash.url + "/ui?window=7d&by=team") as r:
            html = await r.text()
            assert re.search(r'<svg class="chart"', html) and html.count('class="bar"') > 3
            assert "team=support" in html  # a top spender links to its rows
        async with s.get(dash.url + "/ui/requests?team=support&order=cost") as r:
            html = await r.text()
            assert "thr-ui-" in html and "key_search" not in html
        async with s.get(dash.url + "/ui/requests/thr-ui-0002") as r:
            assert r.status == 200 and 'id="attempts"' in await r.text()
        async with s.get(dash.url + "/ui/requests/nope") as r:
            assert r.status == 404
        async with s.get(dash.url + "/ui/health?window=24h") as r:
            assert r.status == 200 and kpi(await r.text(), "errors").endswith("%")


async def test_static_files_and_headers(dash: Dash) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(dash.url + "/ui/static/thrifty.css") as r:
            assert r.status == 200 and "svg.chart" in await r.text()
        async with s.get(dash.url + "/ui/static/../../etc/passwd") as r:
            assert r.status == 404
        async with s.get(dash.url + "/ui", headers=bearer(MASTER)) as r:
            assert "default-src 'self'" in r.headers["content-security-policy"]
            assert r.headers["cache-control"] == "no-store"
