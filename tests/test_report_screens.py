"""The report mails' HTML as Chromium renders it at phone and desktop widths: nothing wider than
the screen, every image described, the figures readable. Screenshots go to tests/screenshots/
for a person to look at."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, Route, sync_playwright
from sqlalchemy import select

from adserver.config import Settings
from adserver.core.db import make_engine
from adserver.core.models import Report, table
from adserver.notify.reports import make_report
from adserver.reporting.report_periods import period_containing
from tests.conftest import SECRET
from tests.report_world import seed, utc

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"
WIDTHS = {"phone": 375, "desktop": 1280}
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        yield _launch(driver)


def _launch(driver: Playwright) -> Browser:
    return driver.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    )


@pytest.fixture
def reports(sqlite_url: str) -> dict[str, str]:
    """The archived HTML of an advertiser's week, a two-currency month and the summary."""
    engine = make_engine(sqlite_url)
    ids = seed(engine)
    settings = Settings(database_url=sqlite_url, secret_key=SECRET, base_url="https://ads.example")
    pages = {}
    with engine.begin() as connection:
        for name, advertiser, kind, day, now in (
            ("week", ids["acme"], "week", date(2026, 3, 10), utc(2026, 3, 16, 4)),
            ("month", ids["bolt"], "month", date(2026, 3, 10), utc(2026, 4, 1, 8)),
            ("summary", None, "day", date(2026, 3, 9), utc(2026, 3, 10, 4)),
        ):
            made = make_report(
                connection, settings, advertiser_id=advertiser,
                period=period_containing(day, kind), now=now, recipients=[],
            )  # fmt: skip
            assert made is not None
            archived = select(table(Report).c.html).where(table(Report).c.id == made.id)
            pages[name] = str(connection.execute(archived).scalar_one())
    engine.dispose()
    return pages


def _offline(route: Route) -> None:
    """No network: the publisher's logo falls back to its alt text, as a blocked image does."""
    route.abort()


@pytest.mark.parametrize("device", sorted(WIDTHS))
def test_reports_fit_and_read_at_phone_and_desktop_widths(
    browser: Browser, reports: dict[str, str], device: str
) -> None:
    SHOTS.mkdir(exist_ok=True)
    width = WIDTHS[device]
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.route("http*://**", _offline)
    try:
        for name, html in reports.items():
            page.set_content(html, wait_until="load")
            assert page.title()
            assert page.locator("html").get_attribute("lang") == "en"
            # Nothing makes the page wider than the screen; wide tables scroll in their box.
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, f"{name} is {scroll_width}px wide at {width}px"
            for image in page.locator("img").all():
                assert image.get_attribute("alt")
            chart = page.locator('img[src^="data:image/png"]')
            assert chart.count() == 1
            box = chart.bounding_box()
            assert box is not None and 280 <= box["width"] <= 600
            assert page.locator("table[role=table]").count() >= 2
            page.screenshot(path=str(SHOTS / f"report-{name}-{device}.png"), full_page=True)
    finally:
        page.close()
