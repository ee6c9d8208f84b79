"""The sign-in pages in Debian's chromium: they work under their CSP, read well at 1280 and
375 pixels, and every field has a label. Screenshots go to tests/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from tests.accounts_helpers import PASSWORD, add_user
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).parent / "screenshots"
WIDTHS = (1280, 375)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        yield browser
        browser.close()


def check(page: Page, name: str, width: int, problems: list[str]) -> None:
    """No sideways scrolling, every visible field labelled, and a screenshot."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth + 1"), name
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(f => !f.labels || f.labels.length === 0).map(f => f.name)"""
    )
    assert unlabelled == [], f"{name}: fields without a label: {unlabelled}"
    assert page.title().endswith("· adserver"), name
    assert page.evaluate("document.documentElement.lang") == "en"
    assert problems == [], problems


@pytest.mark.parametrize("width", WIDTHS)
def test_signing_in_and_changing_a_password_in_a_browser(
    browser: Browser, live_server: LiveServer, engine: Engine, width: int
) -> None:
    add_user(engine, "ops@example.com")
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    # Resources are checked by their responses below (the browser's own favicon.ico probe
    # gets a 404 that no page asked for).
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status == 404 else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{live_server.url}/")
    assert page.url.endswith("/login")
    check(page, "login", width, problems)
    page.fill("#email", "ops@example.com")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Wrong e-mail address or password."
    assert page.input_value("#email") == "ops@example.com"
    check(page, "login-error", width, problems)

    page.click("text=Forgot your password?")
    check(page, "forgot", width, problems)
    page.fill("#email", "ops@example.com")
    page.click("button[type=submit]")
    assert "a link to choose a new password is on its way" in page.content()
    check(page, "forgot-sent", width, problems)

    page.goto(f"{live_server.url}/login")
    page.fill("#email", "ops@example.com")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert page.url.endswith("/admin")

    page.goto(f"{live_server.url}/account/password")
    page.fill("#f-current_password", "wrong one")
    page.fill("#f-password", "a new passphrase")
    page.fill("#f-confirm", "a new passphrase")
    page.click("text=Change password")
    assert "is not your current password" in page.content()
    check(page, "change-password-error", width, problems)

    page.goto(f"{live_server.url}/admin/users/invite")
    check(page, "invite", width, problems)
    page.fill("#f-email", "new@example.com")
    page.select_option("#f-role", "admin")
    page.click("text=Send invitation")
    assert "Not mailed" in page.content()
    check(page, "invite-link", width, problems)
    context.close()
