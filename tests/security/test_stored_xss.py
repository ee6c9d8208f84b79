"""Stored, reflected and macro XSS, checked where it matters: in Chromium. Every text field an
admin or advertiser can enter holds script, and every page that shows it back, signed in as the
publisher and as the advertiser, must show it as text with no script run; CSV cells that a
spreadsheet would run as a formula are quoted."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine, insert, select

from adserver.accounts.passwords import hash_password
from adserver.core.clock import local_hour_start
from adserver.core.db import make_engine
from adserver.core.models import Report, Site, User, table
from adserver.notify.reports import run_due_reports
from adserver.reporting.tally import run_tally
from tests.accounts_helpers import PASSWORD, add_user
from tests.conftest import BROWSER_UA, LiveServer, bound_socket, make_settings, start_server
from tests.factories import api_client, b64, created, png, token
from tests.report_world import add_schedule
from tests.seed import add_hourly

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
#: Script three ways: a script element, an event handler breaking out of an attribute, and a
#: formula for spreadsheets. Each sets a mark that the test looks for.
PAYLOAD = (
    "<script>document.body.dataset.xss='s'</script>"
    "\"'><img src=x onerror=\"document.body.dataset.xss='i'\">"
)
FORMULA = '=HYPERLINK("https://evil.example","x")'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    sock = bound_socket()
    server = start_server(make_settings(sqlite_url, sock.getsockname()[1], tmp_path / "s"), sock)
    engine = make_engine(sqlite_url)
    try:
        with api_client(server, token(engine)) as admin:
            ids = hostile_inventory(admin)
        server.runtime.inventory.rebuild()
        add_user(engine, "ops@example.com")
        with engine.begin() as connection:
            connection.execute(
                insert(table(User)).values(
                    email="buyer@example.com",
                    role="advertiser",
                    advertiser_id=ids["advertiser"],
                    password_hash=hash_password(PASSWORD),
                    active=True,
                )
            )
        deliver(server, engine)
        ids["reports"] = build_reports(server, engine, ids)
        yield server, ids
    finally:
        engine.dispose()
        server.stop()
        sock.close()


def hostile_inventory(admin: httpx.Client) -> dict[str, Any]:
    """Every entered field holds the payload (where its rules allow free text)."""
    site = created(
        admin.post(
            "/v1/manage/sites",
            json={"key": "news", "name": FORMULA + PAYLOAD, "domains": ["127.0.0.1"]},
        )
    )
    slot = created(
        admin.post("/v1/manage/slots", json={"site": "news", "name": "top", "sizes": ["300x250"]})
    )
    advertiser = created(admin.post("/v1/manage/advertisers", json={"name": "Acme " + PAYLOAD}))
    campaign = created(
        admin.post(
            "/v1/manage/campaigns",
            json={
                "advertiser": advertiser["id"],
                "name": FORMULA + PAYLOAD,
                "status": "active",
                "price": "2.00",
                "starts_at": "2020-01-01T00:00:00",
                "slots": [slot["id"]],
                "targeting": {"exclude_keywords": [PAYLOAD[:60]]},
            },
        )
    )
    creatives = [
        created(
            admin.post(
                "/v1/manage/creatives",
                json={
                    "campaign": campaign["id"],
                    "name": "Text " + PAYLOAD,
                    "kind": "text",
                    "width": 300,
                    "height": 250,
                    "click_url": 'https://acme.example/?q="><script>x</script>',
                    "title": PAYLOAD[:80],
                    "body": PAYLOAD,
                    "cta": PAYLOAD[:30],
                },
            )
        ),
        created(
            admin.post(
                "/v1/manage/creatives",
                json={
                    "campaign": campaign["id"],
                    "name": "Image " + PAYLOAD,
                    "kind": "image",
                    "width": 300,
                    "height": 250,
                    "click_url": "https://acme.example/",
                    "image": b64(png(300, 250)),
                },
            )
        ),
    ]
    created(admin.post("/v1/manage/tokens", json={"name": "ops " + PAYLOAD}))
    share = created(admin.post("/v1/manage/share-links", json={"campaign": campaign["id"]}))
    return {
        "site": site["id"],
        "slot": slot["id"],
        "advertiser": advertiser["id"],
        "campaign": campaign["id"],
        "creatives": [c["id"] for c in creatives],
        "share": urlsplit(share["url"]).path,
    }


def build_reports(server: LiveServer, engine: Engine, ids: dict[str, Any]) -> dict[str, int]:
    """Yesterday's figures for the hostile campaign, and the advertiser's and the publisher's
    daily reports built over them (mail off: archived only). Returns report ids by whose."""
    now = datetime.now(UTC)
    yesterday = local_hour_start((now - timedelta(days=1)).timestamp(), ZoneInfo("UTC"))
    with engine.begin() as connection:
        site_id = connection.execute(
            select(table(Site).c.id).where(table(Site).c.key == "news")
        ).scalar_one()
        add_hourly(
            connection,
            [
                {
                    "hour": yesterday,
                    "site_id": site_id,
                    "slot_id": ids["slot"],
                    "campaign_id": ids["campaign"],
                    "creative_id": ids["creatives"][0],
                    "requests": 9,
                    "served": 9,
                    "impressions": 9,
                    "clicks": 1,
                }
            ],
        )
    for advertiser in (ids["advertiser"], None):
        add_schedule(
            engine,
            advertiser_id=advertiser,
            period="day",
            hour=now.hour,
            timezone="UTC",
            recipients=["buyer@example.com"],
        )
    assert run_due_reports(engine, server.settings, now=now).built == 2
    with engine.connect() as connection:
        rows = connection.execute(select(table(Report).c.id, table(Report).c.advertiser_id))
        return {"advertiser" if r.advertiser_id else "publisher": r.id for r in rows}


def deliver(server: LiveServer, engine: Engine) -> None:
    """A few impressions and a tally, so the names show in figures, charts and reports too."""
    with server.client() as client:
        for _ in range(4):
            answer = client.get("/v1/decide", params={"site": "news", "slots": "top"})
            found = answer.json()["decisions"]["top"]
            assert found is not None, answer.text
            assert client.post(found["impression_url"]).status_code == 204
    run_tally(engine)


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def assert_no_script_ran(page: Page, url: str, dialogs: list[str], *, shown: bool = True) -> None:
    """No script ran on ``url``; when ``shown``, the page does show the entered text (as text),
    so a page that failed to load or left the field out cannot pass."""
    page.goto(url)
    page.wait_for_load_state("load")
    if shown:
        assert "dataset.xss" in page.content(), f"{url} does not show the entered text"
    assert page.evaluate("document.body.dataset.xss") is None, url
    assert page.locator("img[src=x]").count() == 0, url
    assert not dialogs, (url, dialogs)


def test_entered_text_never_runs_as_script(
    world: tuple[LiveServer, dict[str, Any]], browser: Browser
) -> None:
    server, ids = world
    dialogs: list[str] = []
    publisher_pages = [
        "/admin",
        "/admin/sites",
        "/admin/sites/news",
        "/admin/slots",
        f"/admin/slots/{ids['slot']}",
        "/admin/advertisers",
        f"/admin/advertisers/{ids['advertiser']}",
        "/admin/campaigns",
        f"/admin/campaigns/{ids['campaign']}",
        "/admin/creatives",
        *(f"/admin/creatives/{c}" for c in ids["creatives"]),
        "/admin/reports",
        *(f"/admin/reports/{report}.html" for report in ids["reports"].values()),
        "/admin/users",
        "/admin/tokens",
        ids["share"],
        f"/v1/slot/news/top.html?keywords={PAYLOAD}",
        f"/v1/slot/news/{PAYLOAD}.html",
        f"/no-such-page/{PAYLOAD}",
    ]
    for email, pages in (
        ("ops@example.com", publisher_pages),
        (
            "buyer@example.com",
            [
                "/dashboard",
                "/dashboard?from=2020-01-01&to=2030-01-01",
                "/dashboard/reports",
                f"/dashboard/reports/{ids['reports']['advertiser']}.html",
            ],
        ),
    ):
        context = browser.new_context(user_agent=BROWSER_UA)
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        sign_in(page, server, email)
        for path in pages:
            # A slot named by the payload does not exist: its 404 need not repeat the name.
            shown = path != f"/v1/slot/news/{PAYLOAD}.html"
            assert_no_script_ran(page, server.url + path, dialogs, shown=shown)
        shown = page.content()
        context.close()
        assert "Acme" in shown or email == "ops@example.com"


def test_csv_cells_never_start_a_formula(
    world: tuple[LiveServer, dict[str, Any]], sqlite_url: str
) -> None:
    server, _ = world
    engine = make_engine(sqlite_url)
    with api_client(server, token(engine, name="csv")) as admin:
        answer = admin.get(
            "/v1/stats",
            params={"from": "2020-01-01", "to": "2030-01-01", "by": "campaign", "format": "csv"},
        )
    engine.dispose()
    assert answer.status_code == 200
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    names = [row["campaign_name"] for row in rows if row["campaign_name"]]
    assert names and all(name.startswith("'=") for name in names), names
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
