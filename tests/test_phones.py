"""Phones first, in a real browser at 375, 768 and 1280 px wide.

On the demo article (tags pasted before sizes were picked by width) and on a responsive page
with the copy-ready tags: no horizontal overflow, CLS under 0.02, each ad inside its slot; and
with the copy-ready tags, at 375 px no slot leaves more than a third of its reservation blank.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route
from sqlalchemy import Engine, text

from adserver.core.db import bump_inventory_version
from adserver.delivery.embed import copy_ready_tag
from adserver.demo.data import SITE_KEY, SLOTS
from tests.conftest import BROWSER_UA, LiveServer
from tests.test_browser import (  # noqa: F401  (fixtures)
    CLS_SCRIPT,
    browser,
    database_url,
    demo,
    playwright,
    server_settings,
)

pytestmark = pytest.mark.browser
WIDTHS = (375, 768, 1280)
SCREENSHOTS = Path(__file__).parent / "screenshots"  # git-ignored

#: Each slot's box and its ad's (the ad's outer element, its image or frame), and how far the
#: page is wider than the window, as the browser lays them out.
MEASURE = """() => ({
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  slots: Array.from(document.querySelectorAll("ins[data-ad-slot]")).map((el) => {
    const box = el.getBoundingClientRect();
    const parts = Array.from(el.querySelectorAll(":scope > *, img, iframe"))
      .map((n) => n.getBoundingClientRect())
      .filter((r) => r.width > 0 && r.height > 0);
    return {
      name: el.getAttribute("data-ad-slot"),
      box: [box.left, box.top, box.right, box.bottom],
      ad: [Math.min(...parts.map((r) => r.left)), Math.min(...parts.map((r) => r.top)),
           Math.max(...parts.map((r) => r.right)), Math.max(...parts.map((r) => r.bottom))],
    };
  }),
})"""


def responsive_page(base_url: str) -> str:
    """A plain responsive article carrying the copy-ready tag of every demo slot."""
    tags = {
        name: copy_ready_tag(base_url=base_url, site_key=SITE_KEY, slot_name=name, sizes=sizes)
        for name, sizes in SLOTS.items()
    }
    script = tags["top-of-post"].script
    paragraph = "<p>" + "The lido reopens this summer after years of volunteer work. " * 8 + "</p>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Phones first</title><style>body{margin:0;font:17px/1.6 Georgia,serif}"
        "main{max-width:760px;margin:0 auto;padding:16px}"
        "aside{max-width:300px;margin:0 auto;padding:16px 0}</style>"
        f"{script}</head><body><main><h1>Millbrook Lido</h1>{tags['top-of-post'].slot}"
        f"{paragraph * 3}{tags['below-post'].slot}</main>"
        f"<aside>{tags['ads-area'].slot}</aside></body></html>"
    )


@pytest.fixture
def phone(browser: Browser) -> Iterator[Any]:  # noqa: F811
    contexts = []

    def open_at(width: int) -> Page:
        context = browser.new_context(
            user_agent=BROWSER_UA, viewport={"width": width, "height": 3000}
        )
        contexts.append(context)
        return context.new_page()

    yield open_at
    for context in contexts:
        context.close()


def settle(page: Page) -> dict[str, Any]:
    for name in SLOTS:
        page.wait_for_selector(
            f'ins[data-ad-slot="{name}"][data-ad-status="filled"]', state="attached", timeout=10_000
        )
    page.wait_for_timeout(300)  # images decoded and laid out: what the reader will see
    measured: dict[str, Any] = page.evaluate(MEASURE)
    measured["cls"] = page.evaluate(CLS_SCRIPT)
    return measured


def assert_fits(measured: dict[str, Any], width: int) -> None:
    assert measured["overflow"] <= 0, f"{width}px: the page scrolls sideways"
    assert measured["cls"] < 0.02, f"{width}px: layout shift {measured['cls']}"
    for slot in measured["slots"]:
        left, top, right, bottom = slot["box"]
        a_left, a_top, a_right, a_bottom = slot["ad"]
        inside = a_left >= left - 1 and a_right <= right + 1 and a_top >= top - 1
        assert inside and a_bottom <= bottom + 1, f"{width}px: {slot['name']} spills out"


@pytest.mark.parametrize("width", WIDTHS)
def test_tags_pasted_before_keep_working_at_every_width(
    demo: LiveServer,  # noqa: F811
    phone: Any,
    width: int,
) -> None:
    page = phone(width)
    page.goto(f"{demo.url}/demo/")
    assert_fits(settle(page), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_copy_ready_tags_reserve_what_each_width_shows(
    demo: LiveServer,  # noqa: F811
    phone: Any,
    width: int,
) -> None:
    page = phone(width)
    html = responsive_page(demo.url)
    sizes_sent: list[Any] = []
    page.on(
        "request",
        lambda r: sizes_sent.append(r.post_data_json) if "/v1/decide" in r.url else None,
    )

    def serve(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=html)

    page.route(f"{demo.url}/phones.html", serve)
    page.goto(f"{demo.url}/phones.html")
    measured = settle(page)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"phones-copy-ready-{width}.png"), full_page=True)
    assert_fits(measured, width)
    asked = {slot["name"]: slot.get("sizes") for body in sizes_sent for slot in body["slots"]}
    if width == 375:
        # Only the 300x250 fits below the post; the leaderboard alone is scaled down.
        assert asked["below-post"] == ["300x250"]
        assert asked["top-of-post"] == ["728x90"]
        for slot in measured["slots"]:
            top, bottom = slot["box"][1], slot["box"][3]
            blank = (bottom - top) - (slot["ad"][3] - slot["ad"][1])
            assert blank <= (bottom - top) / 3, f"{slot['name']}: {blank}px of it blank"
    if width == 1280:
        assert asked["below-post"] == ["728x90", "300x250"]


def test_a_text_ad_fills_the_box_it_is_given(
    demo: LiveServer,  # noqa: F811
    engine: Engine,
    phone: Any,
) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE creative SET status = 'paused' WHERE kind = 'image'"))
        bump_inventory_version(connection)
    demo.runtime.inventory.rebuild()
    html = responsive_page(demo.url)
    for url in (f"{demo.url}/phones.html", f"{demo.url}/demo/"):
        page = phone(375)
        page.route(f"{demo.url}/phones.html", lambda route: route.fulfill(body=html))
        page.goto(url)
        measured = settle(page)
        copy_ready = url.endswith("phones.html")
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"phones-text-{copy_ready}.png"))
        if copy_ready:
            assert_fits(measured, 375)
        assert measured["overflow"] <= 0
        filled = 0
        for slot in measured["slots"]:
            text_ad = page.locator(f'ins[data-ad-slot="{slot["name"]}"] a.adsv-text')
            if text_ad.count():
                box = text_ad.bounding_box()
                assert box is not None
                reserved = slot["box"][3] - slot["box"][1]
                assert box["height"] >= reserved - 1  # fills it, however tall it is
                if copy_ready:
                    assert box["height"] <= reserved + 1
                filled += 1
        assert filled == 1  # the tearoom's text ad, on one slot (never twice on a page)
