"""The publisher's /admin/reports page: mail on or off, what did not go out, schedules made,
changed and deleted through forms, and the archive's files; the advertiser's past reports and
recipients on its dashboard."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import Engine, insert, select, update

from adserver.accounts.passwords import hash_password
from adserver.core.models import Outbox, Report, ReportSchedule, User, table
from adserver.notify.mail import Mailer
from adserver.notify.outbox import drain
from adserver.notify.reports import run_due_reports
from tests.accounts_helpers import PASSWORD, csrf_of, login
from tests.admin_pages import (
    ADMIN_EMAIL,
    AdminBrowser,
    admin_browser,
    admin_engine,
    field_error,
)
from tests.conftest import LiveServer
from tests.report_world import add_schedule, seed, utc
from tests.test_report_screens import SHOTS, _launch

__all__ = ["admin_browser", "admin_engine"]  # fixtures


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The page tests run on SQLite; the API and delivery tests cover PostgreSQL."""
    return sqlite_url


def test_admin_sees_mail_off_schedules_problems_and_reports(
    live_server: LiveServer, admin_browser: AdminBrowser, admin_engine: Engine
) -> None:
    ids = seed(admin_engine)
    page = admin_browser.get("/admin/reports")
    assert page.status_code == 200
    assert "Mail is off" in page.text and "No schedules yet." in page.text

    made = admin_browser.submit(
        "/admin/reports/schedules",
        {"advertiser": str(ids["acme"]), "period": "week", "weekday": "0", "hour": "9",
         "timezone": "", "recipients": "ann@acme.example\nbob@acme.example", "active": "1"},
        page="/admin/reports",
    )  # fmt: skip
    listing = admin_browser.follow(made)
    assert "Schedule made." in listing.text
    assert "Weekly on Monday at 09:00 Asia/Kolkata" in listing.text  # the first site's zone
    with admin_engine.connect() as connection:
        (schedule,) = connection.execute(select(table(ReportSchedule))).all()
    assert schedule.recipients == ["ann@acme.example", "bob@acme.example"]

    refused = admin_browser.submit(
        "/admin/reports/schedules",
        {"period": "month", "day": "31", "hour": "25", "recipients": "not-an-address"},
        page="/admin/reports",
    )
    assert refused.status_code == 422
    assert field_error(refused.text, "day") and field_error(refused.text, "hour")
    assert field_error(refused.text, "recipients")

    changed = admin_browser.submit(
        f"/admin/reports/schedules/{schedule.id}",
        {"period": "day", "hour": "7", "timezone": "Europe/London",
         "recipients": "ann@acme.example", "version": "1"},
    )  # fmt: skip
    assert "Schedule saved." in admin_browser.follow(changed).text
    with admin_engine.connect() as connection:
        row = connection.execute(select(table(ReportSchedule))).one()
    assert (row.period, row.weekday, row.hour, row.active) == ("day", None, 7, False)
    with admin_engine.begin() as connection:
        connection.execute(
            update(table(ReportSchedule)).values(active=True, created_at=utc(2020, 1, 1))
        )

    # A report goes out; one recipient's server refuses it for good.
    run_due_reports(admin_engine, live_server.settings, now=utc(2026, 3, 10, 8))
    drain(admin_engine, Mailer.from_url(None), holder="t", now=utc(2026, 3, 10, 8))
    with admin_engine.begin() as connection:
        connection.execute(
            update(table(Outbox)).values(status="failed", detail="550 5.1.1 no such mailbox")
        )
    page = admin_browser.get("/admin/reports")
    assert "Mail that did not go out" in page.text and "550 5.1.1 no such mailbox" in page.text
    assert "Acme: Mon 9 Mar 2026" in page.text
    assert "/admin/reports/1.html" in page.text
    html = admin_browser.get("/admin/reports/1.html")
    assert html.status_code == 200 and "Advertising report for Acme" in html.text
    assert "default-src 'none'" in html.headers["content-security-policy"]
    csv = admin_browser.get("/admin/reports/1.csv")
    assert csv.text.startswith("day,impressions,")
    assert admin_browser.get("/admin/reports/99.html").status_code == 404

    deleted = admin_browser.submit(
        f"/admin/reports/schedules/{schedule.id}/delete", {"version": str(row.version)},
        page=f"/admin/reports/schedules/{schedule.id}",
    )  # fmt: skip
    assert "Schedule paused" in admin_browser.follow(deleted).text


def test_reports_pages_are_for_admins_only(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as anonymous:
        answer = anonymous.get("/admin/reports", follow_redirects=False)
    assert answer.status_code in (302, 303) and "/login" in answer.headers["location"]


@pytest.mark.browser
def test_the_reports_page_fits_a_phone_and_a_desktop(
    live_server: LiveServer, admin_browser: AdminBrowser, admin_engine: Engine
) -> None:
    ids = seed(admin_engine)
    add_schedule(
        admin_engine,
        advertiser_id=ids["acme"],
        period="week",
        weekday=0,
        hour=9,
        timezone="Asia/Kolkata",
        recipients=["ann@acme.example", "bob@acme.example"],
    )
    add_schedule(admin_engine, advertiser_id=None, period="day", hour=7, timezone="UTC",
                 recipients=[])  # fmt: skip
    run_due_reports(admin_engine, live_server.settings, now=utc(2026, 3, 16, 4))
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as driver:
        browser = _launch(driver)
        try:
            for device, width in (("phone", 375), ("desktop", 1280)):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(f"{live_server.url}/login")
                page.fill("input[name=email]", ADMIN_EMAIL)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.goto(f"{live_server.url}/admin/reports")
                assert page.title().startswith("Reports and mail")
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                for field in page.locator(
                    "form.stacked input:not([type=hidden]), select, textarea"
                ).all():
                    field_id = field.get_attribute("id")
                    assert page.locator(f"label[for='{field_id}']").count() == 1
                page.screenshot(path=str(SHOTS / f"admin-reports-{device}.png"), full_page=True)
                page.goto(f"{live_server.url}/dashboard/reports?advertiser={ids['acme']}")
                assert page.title().startswith("Reports · Acme")
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                shot = SHOTS / f"dashboard-reports-{device}.png"
                page.screenshot(path=str(shot), full_page=True)
                page.close()
        finally:
            browser.close()


def test_an_advertiser_sees_its_own_reports_and_changes_only_its_recipients(
    live_server: LiveServer, admin_engine: Engine
) -> None:
    ids = seed(admin_engine)
    own = add_schedule(
        admin_engine,
        advertiser_id=ids["acme"],
        period="week",
        weekday=0,
        hour=9,
        timezone="UTC",
        recipients=["ann@acme.example"],
    )
    other = add_schedule(admin_engine, advertiser_id=ids["bolt"], period="week", weekday=0,
                         hour=9, timezone="UTC", recipients=["kim@bolt.example"])  # fmt: skip
    run_due_reports(admin_engine, live_server.settings, now=utc(2026, 3, 16, 10))
    with admin_engine.begin() as connection:
        connection.execute(
            insert(table(User)).values(
                email="ann@acme.example", role="advertiser", advertiser_id=ids["acme"],
                password_hash=hash_password(PASSWORD), active=True,
            )
        )  # fmt: skip
        reports = {r.advertiser_id: r.id for r in connection.execute(select(table(Report)))}
    with live_server.client() as client:
        assert login(client, "ann@acme.example").status_code == 303
        page = client.get("/dashboard/reports")
        assert page.status_code == 200
        assert "Acme: 9 Mar to 15 Mar 2026" in page.text and "Bolt" not in page.text
        assert client.get(f"/dashboard/reports/{reports[ids['acme']]}.csv").status_code == 200
        assert client.get(f"/dashboard/reports/{reports[ids['bolt']]}.html").status_code == 404
        assert client.get(f"/dashboard/reports?advertiser={ids['bolt']}").status_code == 404
        assert '<a href="/dashboard/reports">Reports</a>' in client.get("/dashboard").text

        token = csrf_of(page.text)
        saved = client.post(
            f"/dashboard/reports/schedules/{own}",
            data={"recipients": "ann@acme.example\nboss@acme.example", "version": "1",
                  "csrf_token": token},
        )  # fmt: skip
        assert saved.status_code == 303
        assert "Recipients saved." in client.get(saved.headers["location"]).text
        refused = client.post(
            f"/dashboard/reports/schedules/{own}",
            data={"recipients": "not an address", "version": "2", "csrf_token": token},
        )
        assert refused.status_code == 422 and "must be an e-mail address" in refused.text
        assert "not an address" in refused.text  # what was typed stays
        theirs = client.post(
            f"/dashboard/reports/schedules/{other}",
            data={"recipients": "me@acme.example", "csrf_token": token},
        )
        assert theirs.status_code == 404
    with admin_engine.connect() as connection:
        rows = {r.id: r.recipients for r in connection.execute(select(table(ReportSchedule)))}
    assert rows[own] == ["ann@acme.example", "boss@acme.example"]
    assert rows[other] == ["kim@bolt.example"]
