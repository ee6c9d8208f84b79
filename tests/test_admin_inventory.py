"""/admin sites and slots through their forms, on a live server: create, keep what was typed
beside each error, edit without losing someone else's change, archive what has statistics,
lists paged and filtered, the change history; and who may open them at all."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from adserver.core.db import make_engine
from adserver.core.models import utcnow
from adserver.services import sites
from adserver.services.common import SYSTEM
from tests.accounts_helpers import add_user, csrf_of, login
from tests.admin_pages import (
    ADMIN_EMAIL,
    AdminBrowser,
    admin_browser,
    admin_engine,
    field_error,
    field_value,
)
from tests.conftest import LiveServer, bound_socket, make_settings, start_server
from tests.seed import add_hourly

__all__ = ["admin_browser", "admin_engine"]  # fixtures

#: The pages add no SQL of their own: the service layer's tests cover both databases, so most
#: page tests run on SQLite, and those that write and archive run on PostgreSQL too.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SITE = {
    "key": "news",
    "name": "Riverside News",
    "domains": "news.example\n*.news.example",
    "timezone": "Asia/Kolkata",
    "currency": "inr",
}


@sqlite_only
def test_a_site_is_created_through_its_form(admin_browser: AdminBrowser) -> None:
    answer = admin_browser.submit("/admin/sites/new", SITE)
    assert answer.headers["location"] == "/admin/sites/news"
    page = admin_browser.follow(answer)
    assert "Site Riverside News created." in page.text
    assert "<title>Riverside News · adserver</title>" in page.text
    assert "set-cookie" in page.headers  # the flash, shown once, is cleared
    assert "created." not in admin_browser.get("/admin/sites/news").text
    listing = admin_browser.get("/admin/sites").text
    assert 'href="/admin/sites/news">Riverside News</a>' in listing
    assert "news.example, *.news.example" in listing
    stored = admin_browser.get("/admin/sites/news").text
    assert field_value(stored, "currency") == "INR"


@sqlite_only
def test_a_refused_form_keeps_what_was_typed_and_says_why_beside_each_field(
    admin_browser: AdminBrowser,
) -> None:
    typed = {**SITE, "key": "Not A Slug", "timezone": "Mars/Olympus", "name": "<b>Mine</b>"}
    answer = admin_browser.submit("/admin/sites/new", typed)
    assert answer.status_code == 422
    html = answer.text
    assert "URL-safe slug" in (field_error(html, "key") or "")
    assert "IANA time zone" in (field_error(html, "timezone") or "")
    assert field_error(html, "name") is None
    assert field_value(html, "key") == "Not A Slug"
    assert field_value(html, "name") == "&lt;b&gt;Mine&lt;/b&gt;"
    assert "news.example\n*.news.example</textarea>" in html
    assert 'aria-invalid="true"' in html
    assert admin_browser.get("/admin/sites/not-a-slug").status_code == 404


def test_an_edit_made_meanwhile_is_never_overwritten_silently(
    admin_browser: AdminBrowser,
) -> None:
    admin_browser.follow(admin_browser.submit("/admin/sites/new", SITE))
    opened = admin_browser.get("/admin/sites/news").text
    token = csrf_of(opened)
    version = re.search(r'name="version" value="(\d+)"', opened)
    assert version is not None
    # Someone else saves first.
    with admin_browser.engine.begin() as connection:
        sites.update_site(
            connection,
            key="news",
            data=sites.SiteUpdate(name="Their name"),
            expected_version=None,
            actor=SYSTEM,
            now=utcnow(),
        )
    mine = {**SITE, "name": "My name", "status": "active", "version": version.group(1)}
    answer = admin_browser.client.post("/admin/sites/news", data={**mine, "csrf_token": token})
    assert answer.status_code == 412
    assert "changed since version" in answer.text
    assert field_value(answer.text, "name") == "My name"  # what I typed is still there
    again = re.search(r'name="version" value="(\d+)"', answer.text)
    assert again is not None and int(again.group(1)) == int(version.group(1)) + 1
    saved = admin_browser.client.post(
        "/admin/sites/news", data={**mine, "version": again.group(1), "csrf_token": token}
    )
    assert saved.status_code == 303
    assert field_value(admin_browser.get("/admin/sites/news").text, "name") == "My name"


@sqlite_only
def test_a_slot_gets_a_copy_ready_tag_and_a_history(admin_browser: AdminBrowser) -> None:
    admin_browser.follow(admin_browser.submit("/admin/sites/new", SITE))
    slot = {"site": "news", "name": "top-of-post", "sizes": "728x90\n300x250", "fallback_html": ""}
    answer = admin_browser.submit("/admin/slots/new", slot, page="/admin/slots/new?site=news")
    page = admin_browser.follow(answer)
    base = re.escape(admin_browser.client.base_url.join("/").__str__().rstrip("/"))
    assert re.search(
        rf"&lt;script async src=&#34;{base}/tag.js&#34; data-site=&#34;news&#34;&gt;", page.text
    )
    # The tallest size is reserved, so the page does not move when the ad arrives.
    assert "data-ad-slot=&#34;top-of-post&#34;" in page.text
    assert "min-height:250px" in page.text
    assert f"{base}/v1/slot/news/top-of-post.html".replace("\\", "") in page.text
    assert 'data-copy="tag-slot"' in page.text
    assert '<script src="/static/js/admin.js" defer></script>' in page.text
    slot_path = answer.headers["location"]
    slot_id = slot_path.rsplit("/", 1)[1]
    edited = admin_browser.submit(
        slot_path, {"sizes": "728x90", "status": "active", "fallback_html": "", "version": "1"}
    )
    assert edited.status_code == 303, edited.text
    history = admin_browser.get(f"/admin/history/slot/{slot_id}").text
    assert history.count(f"<td>{ADMIN_EMAIL} <span") == 2
    assert "<td>create</td>" in history and "<td>update</td>" in history
    assert "728x90" in history


def test_a_site_with_statistics_is_archived_and_one_without_is_deleted(
    admin_browser: AdminBrowser,
) -> None:
    for key in ("kept", "gone"):
        admin_browser.follow(admin_browser.submit("/admin/sites/new", {**SITE, "key": key}))
    with admin_browser.engine.begin() as connection:
        kept = sites.get_site(connection, key="kept")
        add_hourly(
            connection,
            [
                {
                    "hour": 0,
                    "site_id": kept.id,
                    "slot_id": 0,
                    "campaign_id": 0,
                    "creative_id": 0,
                    "requests": 3,
                }
            ],
        )
    archived = admin_browser.submit(
        "/admin/sites/kept/delete", {"version": "1"}, page="/admin/sites/kept"
    )
    assert archived.headers["location"] == "/admin/sites/kept"
    assert "archived" in admin_browser.follow(archived).text
    deleted = admin_browser.submit(
        "/admin/sites/gone/delete", {"version": "1"}, page="/admin/sites/gone"
    )
    assert deleted.headers["location"] == "/admin/sites"
    assert "Site deleted." in admin_browser.follow(deleted).text
    assert admin_browser.get("/admin/sites/gone").status_code == 404
    active = admin_browser.get("/admin/sites", params={"status": "active"}).text
    archived_list = admin_browser.get("/admin/sites", params={"status": "archived"}).text
    assert "/admin/sites/kept" not in active and "/admin/sites/kept" in archived_list


@sqlite_only
def test_lists_are_paged(admin_browser: AdminBrowser) -> None:
    with admin_browser.engine.begin() as connection:
        for number in range(51):
            sites.create_site(
                connection,
                data=sites.SiteCreate(key=f"site-{number:02d}", name=f"Site {number:02d}"),
                actor=SYSTEM,
                now=utcnow(),
            )
    first = admin_browser.get("/admin/sites").text
    assert "/admin/sites/site-49" in first and "/admin/sites/site-50" not in first
    following = re.search(r'href="([^"]+)" rel="next"', first)
    assert following is not None
    second = admin_browser.get(following.group(1).replace("&amp;", "&")).text
    assert "/admin/sites/site-50" in second and "/admin/sites/site-00" not in second
    assert 'rel="next"' not in second and "First page" in second


@sqlite_only
def test_only_admins_reach_the_admin_pages(
    live_server: LiveServer, admin_engine: Engine, admin_browser: AdminBrowser
) -> None:
    admin_browser.follow(admin_browser.submit("/admin/sites/new", SITE))
    pages = ["/admin/sites", "/admin/sites/news", "/admin/slots", "/admin/history/site/news"]
    with live_server.client() as visitor:
        for path in pages:
            answer = visitor.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next=")
    add_user(admin_engine, "buyer@acme.test", role="advertiser", advertiser="Acme")
    with live_server.client() as advertiser:
        login(advertiser, "buyer@acme.test")
        for path in pages:
            assert advertiser.get(path).status_code == 403, path
        token = csrf_of(advertiser.get("/logout").text)
        refused = advertiser.post(
            "/admin/sites/new", data={**SITE, "key": "theirs", "csrf_token": token}
        )
        assert refused.status_code == 403
    assert admin_browser.get("/admin/sites/theirs").status_code == 404


@sqlite_only
def test_a_form_without_its_csrf_token_is_refused(admin_browser: AdminBrowser) -> None:
    answer = admin_browser.client.post("/admin/sites/new", data=SITE)
    assert answer.status_code == 403
    forged = admin_browser.client.post("/admin/sites/new", data={**SITE, "csrf_token": "x" * 43})
    assert forged.status_code == 403
    assert admin_browser.get("/admin/sites/news").status_code == 404


@sqlite_only
def test_unknown_ids_are_404_pages(admin_browser: AdminBrowser) -> None:
    for path in ("/admin/slots/999", "/admin/sites/nothing", "/admin/history/planet/1"):
        answer = admin_browser.get(path)
        assert answer.status_code == 404, path
        assert "Page not found" in answer.text


@sqlite_only
def test_pages_carry_the_security_headers(admin_browser: AdminBrowser) -> None:
    answer: httpx.Response = admin_browser.get("/admin/sites")
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "private, no-store"


@sqlite_only
def test_numbers_too_large_and_unknown_cursors_are_4xx_pages(admin_browser: AdminBrowser) -> None:
    huge = "9" * 25
    for path in (
        f"/admin/slots/{huge}",
        f"/admin/campaigns/{huge}",
        f"/admin/campaigns?advertiser={huge}",
        f"/admin/creatives?campaign={huge}",
        f"/admin/users?advertiser={huge}",
        "/admin/sites?after=no-such-site",
        "/admin/campaigns?status=bogus",
    ):
        answer = admin_browser.get(path)
        assert 400 <= answer.status_code < 500, path
        assert "<title>" in answer.text, path
    refused = admin_browser.submit(
        "/admin/campaigns/new",
        {"advertiser": huge, "name": "x", "price": "1", "slots": [huge]},
    )
    assert 400 <= refused.status_code < 500


def test_the_slot_preview_says_when_serving_has_not_caught_up(
    sqlite_url: str, tmp_path: Path
) -> None:
    sock = bound_socket()
    settings = make_settings(sqlite_url, sock.getsockname()[1], tmp_path / "spool")
    # This process rereads the data once an hour: its snapshot stays behind every change.
    server = start_server(settings.with_changes(inventory_poll_interval=3600.0), sock)
    engine = make_engine(sqlite_url)
    try:
        add_user(engine, ADMIN_EMAIL)
        with server.client() as client:
            login(client, ADMIN_EMAIL)
            browser = AdminBrowser(client, engine)
            browser.follow(browser.submit("/admin/sites/new", SITE))
            made = browser.submit(
                "/admin/slots/new", {"site": "news", "name": "top", "sizes": "728x90"}
            )
            page = browser.follow(made).text
            assert "The latest changes are still on their way to serving" in page
            server.runtime.inventory.rebuild()
            assert "still on their way" not in browser.get(made.headers["location"]).text
    finally:
        server.stop()
        sock.close()
        engine.dispose()
