"""The dashboard under ``/ui``: aiohttp handlers over ``thrifty.insights`` views, behind the
master key or a read-only virtual key.

Sign-in: the login form takes a key once and answers with a signed session cookie (HttpOnly,
SameSite=Strict, 8 hours); the key itself is never stored in the browser or put in a page.
``Authorization: Bearer`` works too, for scripts. Inference keys are refused here, and read
keys are refused by the API (``server.keys_wiring``). Queries run in a worker thread.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aiohttp import web

from thrifty.insights.filters import DIMENSIONS, Filters
from thrifty.ui import pages
from thrifty.ui.render import render, static_text
from thrifty.ui.session import COOKIE, LIFETIME_S, MASTER, issue, session_secret, verify

if TYPE_CHECKING:
    from thrifty.engine.gateway import Gateway
    from thrifty.keys.store import KeyStore

log = logging.getLogger("thrifty.ui")
PREFIX = "/ui"
_STATIC = {"thrifty.css": "text/css", "thrifty.js": "text/javascript"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Denied(Exception):
    """The caller may not see the dashboard: ``status`` 401 (who are you) or 403 (not you)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Dashboard:
    def __init__(self, gateway: Gateway, master_key: bytes | None,
                 key_store: KeyStore | None) -> None:
        self.gw = gateway
        self.master_key = master_key
        self.key_store = key_store
        self.secret = session_secret(master_key)
        self.pages = pages.Pages(gateway, key_store)

    # -- who may look ------------------------------------------------------------------

    async def who(self, presented: str, now: float) -> str:
        """The session subject for a presented key: ``master`` or a read key's id."""
        if self.master_key is not None and hmac.compare_digest(presented.encode(),
                                                               self.master_key):
            return MASTER
        key = await self.key_store.get_by_plaintext(presented) if self.key_store else None
        if key is None or key.status(now) != "active":
            raise Denied(401, "That key is not valid (unknown, revoked or expired).")
        if key.role != "read":
            raise Denied(403, f"Key {key.id} is an inference key; the dashboard takes the "
                              "master key or a read-only key (thrifty keys create --role read).")
        return key.id

    async def guard(self, request: web.Request) -> str:
        now = time.time()
        if self.master_key is None and self.key_store is None:
            raise Denied(403, "The dashboard needs a master key (THRIFTY_MASTER_KEY) or "
                              "read-only virtual keys; neither is configured.")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return await self.who(auth[7:].strip(), now)
        subject = verify(self.secret, request.cookies.get(COOKIE), now)
        if subject is None:
            raise Denied(401, "Sign in to see the dashboard.")
        if subject != MASTER:
            await self._still_live(subject, now)
        return subject

    async def _still_live(self, key_id: str, now: float) -> None:
        """A revoked or expired read key ends its sessions at once: one indexed lookup per
        page is nothing next to the page's queries."""
        from thrifty.errors import NotFound

        try:
            key = await self.key_store.get(key_id) if self.key_store else None
        except NotFound:
            key = None
        if key is None or key.status(now) != "active" or key.role != "read":
            raise Denied(401, "Your session's key is no longer valid; sign in again.")

    def protect(self, page: Callable[[web.Request], Awaitable[str]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                await self.guard(request)
            except Denied as exc:
                if exc.status == 401 and "authorization" not in request.headers:
                    raise web.HTTPSeeOther(f"{PREFIX}/login") from None
                return _page(render("login.html", error=exc.message), exc.status)
            try:
                return _page(await page(request))
            except web.HTTPException:
                raise
            except Exception:
                log.exception("dashboard page %s failed", request.path)
                return _page(render("error.html", message="This page failed to load; see "
                                    "the gateway log."), 500)

        return handle

    # -- sign in and out -----------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        return _page(render("login.html", error=None))

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        presented = str(form.get("key", "")).strip()
        try:
            if not presented:
                raise Denied(401, "Paste the master key or a read-only key.")
            subject = await self.who(presented, time.time())
        except Denied as exc:
            return _page(render("login.html", error=exc.message), exc.status)
        resp = web.HTTPSeeOther(PREFIX)
        resp.set_cookie(COOKIE, issue(self.secret, subject, time.time()), max_age=LIFETIME_S,
                        path=PREFIX, httponly=True, samesite="Strict", secure=request.secure)
        raise resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        resp = web.HTTPSeeOther(f"{PREFIX}/login")
        resp.del_cookie(COOKIE, path=PREFIX)
        raise resp

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(text=static_text(name), content_type=_STATIC[name],
                            headers={"cache-control": "max-age=3600"})

    async def keep_rollups_current(self, every_s: float = 10.0) -> None:
        """Fold new ledger rows into the SQLite rollups in the background, so a page never
        waits for a long backlog (PostgreSQL's triggers need no help). The first fold runs at
        start-up, on a thread of its own: the connections, caches and thread memory it needs
        are taken once, then. Folds every 10 s stay small (a 30 s one on a loaded server held
        the write lock longer and left a 3-5 MB step in RSS; 10 s: ~2.3 MB, once)."""
        ledger = self.gw.runtime.settings.ledger
        if ledger.backend != "sqlite" or str(ledger.path) == ":memory:":
            return  # an in-memory ledger cannot be read from a second connection
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(1, thread_name_prefix="thrifty-rollups")
        try:
            while True:
                try:
                    db = await loop.run_in_executor(pool, self.pages.db)
                    if db is not None:
                        await loop.run_in_executor(pool, db.refresh)
                except Exception:
                    log.exception("ledger rollup catch-up failed; retrying in %.0f s", every_s)
                await asyncio.sleep(every_s)
        finally:
            pool.shutdown(wait=False)

    async def close(self) -> None:
        await asyncio.to_thread(self.pages.close)


def _page(html: str, status: int = 200) -> web.Response:
    # no-store: spend data should not linger in shared caches; the CSP forbids any script
    # or style not served by the gateway itself.
    return web.Response(text=html, status=status, content_type="text/html", headers={
        "cache-control": "no-store",
        "content-security-policy": "default-src 'self'; img-src 'self' data:; "
                                   "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    })


def add_ui_routes(app: web.Application, gateway: Gateway, master_key: bytes | None,
                  key_store: KeyStore | None) -> Dashboard:
    """Mount the dashboard on ``app`` (before any catch-all route)."""
    d = Dashboard(gateway, master_key, key_store)
    app.router.add_get(f"{PREFIX}/login", d.login_form)
    app.router.add_post(f"{PREFIX}/login", d.login)
    app.router.add_post(f"{PREFIX}/logout", d.logout)
    app.router.add_get(f"{PREFIX}/static/{{name}}", d.static)
    app.router.add_get(PREFIX, d.protect(d.pages.overview))
    app.router.add_get(f"{PREFIX}/", d.protect(d.pages.overview))
    app.router.add_get(f"{PREFIX}/health", d.protect(d.pages.health))
    app.router.add_get(f"{PREFIX}/requests", d.protect(d.pages.requests))
    app.router.add_get(f"{PREFIX}/requests/{{request_id}}", d.protect(d.pages.request))

    tasks: list[asyncio.Task[None]] = []

    async def on_startup(app: web.Application) -> None:
        tasks.append(asyncio.create_task(d.keep_rollups_current()))

    async def on_cleanup(app: web.Application) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await d.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return d


def dims_from(query: Any) -> tuple[tuple[str, str], ...]:
    """The dimension filters in a page's query string (unknown names are ignored)."""
    return tuple(sorted((d, str(query[d])) for d in DIMENSIONS if query.get(d)))


__all__ = ["PREFIX", "Dashboard", "Filters", "add_ui_routes", "dims_from"]
