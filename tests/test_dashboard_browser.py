"""The dashboard, a share link and the admin overview in a real browser (Debian's chromium,
Playwright, a live server), after real traffic on the demo article and a tally; screenshots at
desktop and phone widths go to tests/screenshots/ (git-ignored)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy import Engine, text

from adserver.config import Settings
from adserver.delivery.pacing import refresh_delivery
from adserver.demo import data as demo
from adserver.demo.history import add_history
from adserver.reporting.tally import run_tally
from tests.conftest import BROWSER_UA, LiveServer
from tests.factories import api_client, token
from tests.test_demo import FAST_HASHER
from tests.waiting import wait_for

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    )
    yield browser
    browser.close()


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The browser test runs on SQLite; the HTTP tests cover PostgreSQL."""
    return sqlite_url


@pytest.fixture
def server_settings(
    server_settings: tuple[Settings, socket.socket],
) -> tuple[Settings, socket.socket]:
    """As ``adserver demo`` serves: with the demo article mounted, for real traffic."""
    settings, sock = server_settings
    return settings.with_changes(demo=True), sock


def context_for(browser: Browser, width: int, errors: list[str]) -> BrowserContext:
    context = browser.new_context(user_agent=BROWSER_UA, viewport={"width": width, "height": 900})
    # Script errors and CSP violations; failed loads are caught as responses below (the
    # browser's own favicon.ico request, which no page asks for, is no page's error).
    context.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    context.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    return context


def sign_in(page: Page, server: LiveServer, email: str, password: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    page.wait_for_load_state()


def figure(page: Page, label: str) -> str:
    box = page.locator(
        ".figure", has=page.locator(".figure-label", has_text=re.compile(f"^{re.escape(label)}$"))
    )
    return box.locator(".figure-value").inner_text().strip()


def count_events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM event WHERE kind = 'imp' AND valid")
            ).scalar_one()
        )


def test_the_advertiser_sees_its_figures_and_shares_one_campaign(
    live_server: LiveServer, engine: Engine, browser: Browser
) -> None:
    now = datetime.now(UTC)
    assert demo.add_demo_data(engine, base_url=live_server.url, now=now, hasher=FAST_HASHER)
    add_history(engine, now=now)
    live_server.runtime.inventory.rebuild()
    errors: list[str] = []
    SHOTS.mkdir(exist_ok=True)

    # Real traffic: readers open the demo article; the tag counts impressions; the tally runs.
    reader = context_for(browser, 1280, errors)
    article = reader.new_page()
    article.set_viewport_size({"width": 1280, "height": 4000})
    for visit in range(3):
        article.goto(f"{live_server.url}/demo/")
        for slot in ("top-of-post", "below-post", "ads-area"):
            article.wait_for_selector(
                f'ins[data-ad-slot="{slot}"][data-ad-status="filled"]', state="attached"
            )
        wait_for(lambda v=visit: count_events(engine) >= 3 * (v + 1), "impressions counted")
    reader.close()
    assert run_tally(engine) > 0
    refresh_delivery(engine, now=now.timestamp())  # the pacing job, every minute when serving

    with engine.connect() as connection:
        advertiser = connection.execute(
            text("SELECT advertiser_id FROM app_user WHERE role = 'advertiser'")
        ).scalar_one()
    today = now.astimezone(ZoneInfo(demo.TIMEZONE)).date().isoformat()
    with api_client(live_server, token(engine, name="tearoom", advertiser_id=advertiser)) as api:
        stats = api.get("/v1/stats", params={"from": today, "to": today}).json()["totals"]
    assert stats["impressions"] > 0

    for width in (1280, 375):
        context = context_for(browser, width, errors)
        page = context.new_page()
        sign_in(page, live_server, demo.ADVERTISER_EMAIL, demo.ADVERTISER_PASSWORD)
        assert page.url.endswith("/dashboard")
        page.get_by_role("link", name="Today").click()
        page.wait_for_load_state()
        assert figure(page, "Impressions") == f"{stats['impressions']:,}"
        assert figure(page, "Clicks") == f"{stats['clicks']:,}"
        assert figure(page, "Spend (USD)") == stats["spend"]
        page.get_by_role("link", name="Last 30 days").click()
        page.wait_for_load_state()
        assert "range=30d" in page.url
        assert page.locator("svg.chart-wide polyline.chart-current").count() == 1
        # Wide tables scroll in their own boxes; the page itself never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(SHOTS / f"dashboard-{width}.png"), full_page=True)
        if width == 1280:
            page.get_by_label("Campaign", exact=True).last.select_option(
                label="Breakfast by the river"
            )
            page.get_by_role("button", name="Make a share link").click()
            page.wait_for_load_state()
            link = page.locator("input.share-url").first.input_value()
        context.close()

    # The link opens logged out, shows that campaign and leads nowhere else.
    stranger = context_for(browser, 1280, errors)
    shared = stranger.new_page()
    shared.goto(link)
    assert shared.locator("h1").inner_text() == "Breakfast by the river"
    hrefs = shared.eval_on_selector_all(
        "a[href]", "links => links.map(a => a.getAttribute('href'))"
    )
    path = link.removeprefix(live_server.url)
    assert all(h.startswith(path) or h.startswith("#") for h in hrefs), hrefs
    assert "Become a supporter" not in shared.content()
    shared.screenshot(path=str(SHOTS / "share-1280.png"), full_page=True)
    stranger.close()
    with httpx.Client() as anyone:
        assert anyone.get(f"{live_server.url}/dashboard", follow_redirects=False).status_code == 303

    for width in (1280, 375):
        context = context_for(browser, width, errors)
        page = context.new_page()
        sign_in(page, live_server, demo.ADMIN_EMAIL, demo.ADMIN_PASSWORD)
        assert page.url.endswith("/admin")
        assert page.locator("h1").inner_text() == "Overview"
        assert page.locator("#overview-table tbody tr").count() == 3
        assert "Every campaign with a goal is on pace." in page.content()
        page.screenshot(path=str(SHOTS / f"overview-{width}.png"), full_page=True)
        context.close()
    assert errors == []
