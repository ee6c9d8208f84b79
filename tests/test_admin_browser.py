"""The publisher's whole first day in a real browser (Debian's chromium through Playwright, a
live server): sign in, create a site, a slot, an advertiser, a campaign and an image creative
through the forms only, copy the slot's tag with its copy button into a page on another
origin, and see the ad there. Plus screenshots of a refused campaign form on a laptop and a
phone (tests/screenshots/, git-ignored)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from sqlalchemy import Engine, text

from tests.accounts_helpers import PASSWORD, add_user
from tests.conftest import BROWSER_UA, LiveServer
from tests.waiting import wait_for

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
pytestmark = pytest.mark.browser


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
def admin(engine: Engine, live_server: LiveServer) -> LiveServer:
    add_user(engine, "ops@example.com")
    return live_server


class PublisherPages:
    """Another origin (``localhost`` on its own port) serving one page whose HTML is set by the
    test: the publisher's own site, where the tag is pasted."""

    def __init__(self) -> None:
        self.html = ""
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def publisher() -> Iterator[PublisherPages]:
    pages = PublisherPages()
    yield pages
    pages.close()


def sign_in(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/admin/sites")
    assert "/login" in page.url
    page.fill("input[name=email]", "ops@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/admin/sites")


def submit(page: Page) -> None:
    with page.expect_navigation():
        page.click("form.stacked button[type=submit]")


def banner(tmp_path: Path) -> Path:
    path = tmp_path / "banner.png"
    buffer = io.BytesIO()
    Image.new("RGB", (728, 90), (13, 79, 92)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_a_publisher_sets_up_an_ad_through_the_forms_and_it_shows_on_their_site(
    admin: LiveServer, engine: Engine, browser: Browser, publisher: PublisherPages, tmp_path: Path
) -> None:
    context = browser.new_context(user_agent=BROWSER_UA, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=admin.url)
    page = context.new_page()
    sign_in(page, admin)

    page.goto(f"{admin.url}/admin/sites/new")
    page.fill("#f-key", "blog")
    page.fill("#f-name", "My blog")
    page.fill("#f-timezone", "Europe/London")
    page.fill("#f-currency", "GBP")
    page.fill("#f-domains", "localhost")
    submit(page)
    assert page.url.endswith("/admin/sites/blog")

    page.click("text=New slot on this site")
    page.fill("#f-name", "top-of-post")
    page.fill("#f-sizes", "728x90")
    submit(page)
    assert "Slot top-of-post created" in page.content()
    slot_url = page.url

    page.goto(f"{admin.url}/admin/advertisers/new")
    page.fill("#f-name", "Acme Travel")
    submit(page)
    page.click("text=New campaign for Acme Travel")
    page.fill("#f-name", "Spring fares")
    page.select_option("#f-status", "active")
    page.fill("#f-price", "2.50")
    page.select_option("#f-goal_kind", "impressions")
    page.fill("#f-goal_total", "10000")
    page.check("text=top-of-post (728x90)")
    submit(page)
    assert "Campaign Spring fares created" in page.content()

    page.click("text=New creative")
    page.select_option("#f-kind", "html")  # the form shows the fields of the kind chosen
    assert page.locator("#f-html").is_visible() and not page.locator("#f-image").is_visible()
    page.select_option("#f-kind", "image")
    assert page.locator("#f-image").is_visible() and not page.locator("#f-html").is_visible()
    page.fill("#f-name", "Spring banner")
    page.fill("#f-click_url", "https://acme.example/spring")
    page.set_input_files("#f-image", str(banner(tmp_path)))
    submit(page)
    assert "Creative Spring banner created" in page.content()
    assert page.locator('img.preview-frame[width="728"][height="90"]').count() == 1

    # The slot's tag, copied with its buttons, pasted into the publisher's own page.
    page.goto(slot_url)
    page.click('[data-copy="tag-script"]')
    script = page.evaluate("navigator.clipboard.readText()")
    page.click('[data-copy="tag-slot"]')
    slot_tag = page.evaluate("navigator.clipboard.readText()")
    assert 'data-site="blog"' in script and 'data-ad-slot="top-of-post"' in slot_tag
    publisher.html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>My blog</title>'
        f"{script}</head><body><h1>A post</h1>{slot_tag}<p>Text.</p></body></html>"
    )

    # A new site reaches the serving snapshot with the next full rebuild, which rests after
    # the last one (19 times as long as it took): wait for it rather than for a fixed time.
    def serving() -> bool:
        site = admin.runtime.inventory.current.sites.get("blog")
        slot = site.slots.get("top-of-post") if site is not None else None
        return slot is not None and bool(slot.fitting)

    wait_for(serving, "the new site's campaign in the serving snapshot")
    reader = browser.new_context(user_agent=BROWSER_UA, viewport={"width": 1280, "height": 900})
    site_page = reader.new_page()
    site_page.goto(publisher.url)
    site_page.wait_for_selector(
        'ins[data-ad-slot="top-of-post"][data-ad-status="filled"]', state="attached", timeout=10_000
    )
    ad = site_page.locator('ins[data-ad-slot="top-of-post"] img')
    assert ad.count() == 1
    assert ad.get_attribute("width") == "728"
    assert site_page.locator('ins[data-ad-slot="top-of-post"] a').get_attribute(
        "href", timeout=1000
    )

    def impressions() -> int:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM event WHERE kind = 'imp' AND valid")
                ).scalar()
                or 0
            )

    wait_for(lambda: impressions() == 1, "the impression on the publisher's page")
    reader.close()
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_screenshot_of_a_refused_campaign_form(
    admin: LiveServer, browser: Browser, width: int
) -> None:
    context = browser.new_context(user_agent=BROWSER_UA, viewport={"width": width, "height": 900})
    page = context.new_page()
    sign_in(page, admin)
    page.goto(f"{admin.url}/admin/advertisers/new")
    page.fill("#f-name", "Acme Travel")
    submit(page)
    page.click("text=New campaign for Acme Travel")
    page.fill("#f-price", "two pounds")
    page.select_option("#f-goal_kind", "impressions")
    page.fill("#f-goal_total", "0")
    page.fill("#f-frequency_cap_count", "3")
    page.fill("#f-targeting_paths", "sports")
    page.fill("#f-starts_at", "next week")
    submit(page)
    for field in ("name", "price", "goal_total", "frequency_cap_per", "targeting_paths"):
        error = page.locator(f"#f-{field}-error")
        assert error.is_visible(), field
        # Beside its own field: the error starts below the field's input, within a line or two.
        control = page.locator(f"#f-{field}, fieldset:has(#f-{field}-error)").first.bounding_box()
        box = error.bounding_box()
        assert control is not None and box is not None
        assert 0 <= box["y"] - (control["y"] + control["height"]) < 60, field
    assert page.locator("#f-price").input_value() == "two pounds"
    no_overflow = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert no_overflow, "the page scrolls sideways"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"admin-campaign-errors-{width}.png"), full_page=True)
    context.close()
