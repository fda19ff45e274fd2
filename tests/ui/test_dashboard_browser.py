"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): pages load
without console errors, the charts draw the seeded series, a filter changes the numbers,
and an anonymous visitor only gets the sign-in page. Screenshots go to
test-artifacts/ui/ for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import MASTER, Dash

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent (apt-get install chromium)")


async def test_dashboard_in_chromium(dash: Dash) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            await _anonymous(browser, dash)
            await _signed_in(browser, dash)
        finally:
            await browser.close()


async def _anonymous(browser: Any, dash: Dash) -> None:
    page = await browser.new_page()
    await page.goto(dash.url + "/ui/health")
    assert page.url.endswith("/ui/login")
    assert await page.locator("svg.chart").count() == 0
    await page.fill("input[name=key]", "tk-" + "x" * 43)
    await page.click("button[type=submit]")
    assert await page.locator("#login-error").is_visible()
    await page.screenshot(path=str(ARTIFACTS / "login-refused.png"))
    await page.close()


async def _signed_in(browser: Any, dash: Dash) -> None:
    page = await browser.new_page(viewport={"width": 1360, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(dash.url + "/ui/login")
    await page.fill("input[name=key]", MASTER)
    await page.click("button[type=submit]")
    await page.wait_for_url(dash.url + "/ui")
    assert await page.locator("#spend-chart svg rect.bar").count() >= 3  # seeded days x models
    assert await page.locator("#top-spenders tr").count() >= 3
    before = await page.locator("#kpi-spend").inner_text()
    await page.screenshot(path=str(ARTIFACTS / "spend.png"), full_page=True)

    async with page.expect_navigation():  # the select applies itself (thrifty.js)
        await page.select_option("select[name=team]", "support")
    after = await page.locator("#kpi-spend").inner_text()
    assert after != before and "team=support" in page.url
    await page.screenshot(path=str(ARTIFACTS / "spend-team-support.png"), full_page=True)

    await page.goto(dash.url + "/ui/health")
    assert await page.locator("#latency-chart svg rect.bar").count() >= 2
    await page.screenshot(path=str(ARTIFACTS / "health.png"), full_page=True)

    await page.goto(dash.url + "/ui/requests?order=cost")
    await page.locator("#requests a").first.click()
    await page.wait_for_selector("#attempts")
    await page.screenshot(path=str(ARTIFACTS / "request.png"), full_page=True)
    assert errors == []
