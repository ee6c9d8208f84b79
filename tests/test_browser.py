"""The demo article in a real browser: Debian's chromium driven by Playwright, a real server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from sqlalchemy import Engine, text

from adserver.config import Settings
from adserver.core.db import bump_inventory_version
from adserver.demo.data import add_demo_data
from tests.conftest import BROWSER_UA, LiveServer
from tests.waiting import wait_for

CHROMIUM = Path("/usr/bin/chromium")
SLOTS = ("top-of-post", "below-post", "ads-area")
pytestmark = pytest.mark.browser

# Sum of layout-shift entries not caused by input, as the page saw them from the start.
CLS_SCRIPT = """() => new Promise((resolve) => {
  let total = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
  }).observe({type: "layout-shift", buffered: true});
  requestAnimationFrame(() => requestAnimationFrame(() => resolve(total)));
})"""


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    yield browser
    browser.close()


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The browser tests run on SQLite; the HTTP tests cover PostgreSQL."""
    return sqlite_url


@pytest.fixture
def server_settings(
    server_settings: tuple[Settings, socket.socket],
) -> tuple[Settings, socket.socket]:
    """As ``adserver demo`` serves: with the demo pages mounted."""
    settings, sock = server_settings
    return settings.with_changes(demo=True), sock


@pytest.fixture
def demo(engine: Engine, live_server: LiveServer) -> LiveServer:
    assert add_demo_data(engine, base_url=live_server.url) is not None
    live_server.runtime.inventory.rebuild()
    return live_server


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A tall window, so every slot is near view and none waits for a scroll (lazy loading)."""
    # Headless Chromium says "HeadlessChrome", which the crawler list rightly flags as a bot.
    context = browser.new_context(user_agent=BROWSER_UA, viewport={"width": 1280, "height": 4000})
    page = context.new_page()
    yield page
    context.close()


def valid_events(engine: Engine, kind: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM event WHERE kind = :k AND valid"), {"k": kind}
            ).scalar()
            or 0
        )


def open_article(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/demo/")
    for slot in SLOTS:
        page.wait_for_selector(
            f'ins[data-ad-slot="{slot}"][data-ad-status="filled"]', state="attached", timeout=10_000
        )


def test_all_three_slots_show_an_ad_and_their_impressions_count(
    demo: LiveServer, engine: Engine, page: Page
) -> None:
    decide_calls: list[str] = []
    page.on("request", lambda r: decide_calls.append(r.url) if "/v1/decide" in r.url else None)
    open_article(page, demo)
    for slot in SLOTS:
        box = page.locator(f'ins[data-ad-slot="{slot}"]').bounding_box()
        assert box is not None and box["height"] >= 90
        assert (
            page.locator(f'ins[data-ad-slot="{slot}"] a, ins[data-ad-slot="{slot}"] iframe').count()
            >= 1
        )
    assert len(decide_calls) == 1  # one request for every slot on the page
    wait_for(lambda: valid_events(engine, "imp") == 3)


def test_html_creatives_are_sandboxed_and_images_are_sponsored_links(
    demo: LiveServer, page: Page
) -> None:
    open_article(page, demo)
    for frame in page.locator("ins[data-ad-slot] iframe").all():
        assert frame.get_attribute("sandbox") == (
            "allow-scripts allow-popups allow-popups-to-escape-sandbox"
        )
    for link in page.locator("ins[data-ad-slot] a.adsv-image, ins[data-ad-slot] a.adsv-text").all():
        assert link.get_attribute("rel") == "sponsored noopener"


def test_the_ads_cause_no_layout_shift(demo: LiveServer, page: Page) -> None:
    open_article(page, demo)
    assert page.evaluate(CLS_SCRIPT) == 0


def test_a_viewable_impression_is_counted_after_a_second_in_view(
    demo: LiveServer, engine: Engine, page: Page
) -> None:
    with page.expect_response(lambda r: "/v1/view/" in r.url, timeout=10_000) as view:
        open_article(page, demo)
    assert view.value.status == 204
    wait_for(lambda: valid_events(engine, "view") >= 1)


def test_a_click_lands_on_the_landing_page_and_counts(
    demo: LiveServer, engine: Engine, page: Page
) -> None:
    open_article(page, demo)
    wait_for(lambda: valid_events(engine, "imp") >= 1)
    link = page.locator('ins[data-ad-slot="top-of-post"] a').first
    if link.count() == 0:  # an HTML creative: its link is inside the sandboxed frame
        link = page.frame_locator('ins[data-ad-slot="top-of-post"] iframe').locator("a").first
    with page.context.expect_page(timeout=10_000) as opened:
        link.click()
    landing = opened.value
    landing.wait_for_load_state()
    assert landing.url.startswith(f"{demo.url}/demo/landing")
    wait_for(lambda: valid_events(engine, "click") == 1)


def test_a_slot_with_no_ad_collapses(demo: LiveServer, engine: Engine, page: Page) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE campaign SET status = 'paused' WHERE id IN (SELECT cs.campaign_id FROM "
                "campaign_slot cs JOIN slot s ON s.id = cs.slot_id WHERE s.name = 'ads-area')"
            )
        )
        bump_inventory_version(connection)
    demo.runtime.inventory.rebuild()
    page.goto(f"{demo.url}/demo/")
    empty = page.locator('ins[data-ad-slot="ads-area"][data-ad-status="empty"]')
    empty.wait_for(state="attached", timeout=10_000)
    assert empty.bounding_box() is None  # display: none


def test_slots_far_below_the_fold_load_when_scrolled_near(demo: LiveServer, page: Page) -> None:
    decide_calls: list[str] = []
    page.on("request", lambda r: decide_calls.append(r.url) if "/v1/decide" in r.url else None)
    page.set_viewport_size({"width": 1280, "height": 500})
    page.goto(f"{demo.url}/demo/")
    top = page.locator('ins[data-ad-slot="top-of-post"][data-ad-status="filled"]')
    top.wait_for(state="attached", timeout=10_000)
    below = page.locator('ins[data-ad-slot="below-post"]')
    assert below.get_attribute("data-ad-status") == "lazy"
    assert len(decide_calls) == 1
    below.scroll_into_view_if_needed()
    page.locator('ins[data-ad-slot="below-post"][data-ad-status="filled"]').wait_for(
        state="attached", timeout=10_000
    )
    assert len(decide_calls) == 2
