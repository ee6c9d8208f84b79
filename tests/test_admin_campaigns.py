"""/admin advertisers, campaigns and creatives through their forms on a live server: every
campaign field stored as typed, errors beside their fields, the progress bar from the same
statistics as /v1/stats, image uploads previewed at real size, HTML previewed only in a
sandboxed frame of its own, approvals, and the slot's live preview that counts nothing."""

from __future__ import annotations

import io
import re
import time
from datetime import date, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine, func, select

from adserver.core.models import Event, HourlyStat, table
from adserver.delivery.forecast import forecast
from adserver.services import campaigns, creatives
from tests.accounts_helpers import csrf_of
from tests.admin_pages import AdminBrowser, admin_browser, admin_engine, field_error, field_value
from tests.seed import add_hourly
from tests.waiting import wait_for

__all__ = ["admin_browser", "admin_engine"]  # fixtures


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The pages add no SQL of their own (the service layer's tests cover PostgreSQL)."""
    return sqlite_url


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def setup_inventory(browser: AdminBrowser) -> dict[str, str]:
    """A site with two slots and an advertiser, made through the forms; their ids."""
    browser.follow(
        browser.submit(
            "/admin/sites/new",
            {"key": "news", "name": "News", "domains": "", "timezone": "UTC", "currency": "USD"},
        )
    )
    ids: dict[str, str] = {}
    for name, sizes in (("top", "728x90"), ("side", "300x250")):
        made = browser.submit(
            "/admin/slots/new",
            {"site": "news", "name": name, "sizes": sizes, "fallback_html": ""},
        )
        ids[name] = made.headers["location"].rsplit("/", 1)[1]
    made = browser.submit("/admin/advertisers/new", {"name": "Acme", "email": "ads@acme.test"})
    ids["advertiser"] = made.headers["location"].rsplit("/", 1)[1]
    return ids


def campaign_form(ids: dict[str, str], **changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "advertiser": ids["advertiser"],
        "name": "Spring sale",
        "status": "active",
        "tier": "sponsorship",
        "pricing": "cpm",
        "price": "2.50",
        "weight": "3",
        "starts_at": "2026-01-01T00:00",
        "ends_at": "2036-12-31T23:59",
        "goal_kind": "impressions",
        "goal_total": "1000",
        "goal_daily": "",
        "budget": "100",
        "pacing": "asap",
        "frequency_cap_count": "3",
        "frequency_cap_per": "day",
        "targeting_paths": "/sports/*\n/news/*",
        "targeting_exclude_paths": "",
        "targeting_keywords": "cricket, travel",
        "targeting_exclude_keywords": "",
        "targeting_countries": "in, gb",
        "targeting_devices": ["mobile", "tablet"],
        "targeting_days": ["0", "6"],
        "targeting_hours": ["9", "10"],
        "slots": [ids["top"], ids["side"]],
        "rotation": "ctr",
        "labels": "airlines",
        "roadblock": "1",
        "utm": "1",
    }
    form.update(changes)
    return form


def test_a_campaign_keeps_every_field_as_typed(admin_browser: AdminBrowser) -> None:
    ids = setup_inventory(admin_browser)
    advertiser_page = admin_browser.get(f"/admin/advertisers/{ids['advertiser']}").text
    assert f'href="/dashboard?advertiser={ids["advertiser"]}">View as advertiser' in (
        advertiser_page
    )
    answer = admin_browser.submit("/admin/campaigns/new", campaign_form(ids))
    page = admin_browser.follow(answer)
    campaign_id = int(answer.headers["location"].rsplit("/", 1)[1])
    with admin_browser.engine.connect() as connection:
        stored = campaigns.get_campaign(connection, campaign_id=campaign_id)
    assert stored.goal == {"kind": "impressions", "total": 1000, "daily": None}
    assert stored.frequency_cap == {"count": 3, "per": "day"}
    assert stored.targeting["paths"] == ["/sports/*", "/news/*"]
    assert stored.targeting["keywords"] == ["cricket", "travel"]
    assert stored.targeting["countries"] == ["IN", "GB"]
    assert stored.targeting["devices"] == ["mobile", "tablet"]
    assert stored.targeting["days"] == [0, 6] and stored.targeting["hours"] == [9, 10]
    assert sorted(stored.slots) == sorted(int(ids[s]) for s in ("top", "side"))
    assert (stored.budget, stored.pacing, stored.rotation) == ("100.00", "asap", "ctr")
    assert stored.roadblock and stored.utm and stored.labels == ["airlines"]
    assert (stored.tier, stored.price, stored.weight) == ("sponsorship", "2.50", 3)
    # The edit form shows it all again.
    assert field_value(page.text, "goal_total") == "1000"
    assert field_value(page.text, "frequency_cap_count") == "3"
    assert 'name="targeting_days" value="6" checked' in page.text
    assert f'name="slots" value="{ids["side"]}" checked' in page.text
    assert 'id="f-roadblock" name="roadblock" value="1" checked' in page.text
    assert "/sports/*\n/news/*</textarea>" in page.text
    assert '<progress value="0" max="1000" aria-label="Goal: impressions">' in page.text


def test_campaign_errors_sit_beside_their_fields(admin_browser: AdminBrowser) -> None:
    ids = setup_inventory(admin_browser)
    typed = campaign_form(
        ids,
        name="",
        price="two",
        goal_total="lots",
        frequency_cap_per="",
        targeting_paths="sports",
        targeting_countries="India",
        starts_at="next week",
    )
    answer = admin_browser.submit("/admin/campaigns/new", typed)
    assert answer.status_code == 422
    html = answer.text
    for name in (
        "name",
        "price",
        "goal_total",
        "frequency_cap_per",
        "targeting_paths",
        "targeting_countries",
        "starts_at",
    ):
        assert field_error(html, name), f"no error beside {name}"
    assert field_error(html, "budget") is None
    assert field_value(html, "price") == "two"
    assert field_value(html, "goal_total") == "lots"
    assert "sports</textarea>" in html
    assert 'name="targeting_hours" value="10" checked' in html


def test_the_progress_bar_counts_what_was_delivered(admin_browser: AdminBrowser) -> None:
    ids = setup_inventory(admin_browser)
    answer = admin_browser.submit("/admin/campaigns/new", campaign_form(ids))
    campaign_id = int(answer.headers["location"].rsplit("/", 1)[1])
    with admin_browser.engine.begin() as connection:
        site_id = connection.execute(select(table(HourlyStat).c.site_id)).scalar()
        assert site_id is None  # nothing delivered yet
        add_hourly(
            connection,
            [
                {
                    "hour": int(time.time()) // 3600 * 3600 - 3600,
                    "site_id": 1,
                    "slot_id": int(ids["top"]),
                    "campaign_id": campaign_id,
                    "creative_id": 0,
                    "impressions": 250,
                    "clicks": 5,
                }
            ],
        )
    page = admin_browser.get(f"/admin/campaigns/{campaign_id}").text
    assert '<progress value="250" max="1000" aria-label="Goal: impressions">' in page
    assert "250 of 1,000 impressions" in page


def test_an_image_creative_is_uploaded_and_shown_at_its_real_size(
    admin_browser: AdminBrowser,
) -> None:
    ids = setup_inventory(admin_browser)
    made = admin_browser.submit("/admin/campaigns/new", campaign_form(ids))
    campaign_id = made.headers["location"].rsplit("/", 1)[1]
    page = admin_browser.get(f"/admin/creatives/new?campaign={campaign_id}")
    answer = admin_browser.client.post(
        "/admin/creatives/new",
        data={
            "csrf_token": csrf_of(page.text),
            "campaign": campaign_id,
            "kind": "image",
            "name": "Banner",
            "click_url": "https://acme.test/sale",
            "width": "",
            "height": "",
            "weight": "1",
        },
        files={"image": ("banner.png", png(728, 90), "image/png")},
    )
    creative_page = admin_browser.follow(answer).text
    image = re.search(
        r'<img class="preview-frame" src="([^"]+)" width="728" height="90"', (creative_page)
    )
    assert image is not None, "the preview is not at the image's size"
    served = admin_browser.get(image.group(1).replace("&amp;", "&"))
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    typed = {
        "csrf_token": csrf_of(page.text),
        "campaign": campaign_id,
        "kind": "image",
        "name": "Wrong size",
        "click_url": "https://acme.test/",
        "width": "300",
        "height": "250",
    }
    for changes, field in (({}, "image"), ({"click_url": "javascript:alert(1)"}, "click_url")):
        wrong = admin_browser.client.post(
            "/admin/creatives/new",
            data={**typed, **changes},
            files={"image": ("banner.png", png(728, 90), "image/png")},
        )
        assert wrong.status_code == 422
        assert field_error(wrong.text, field), field
        assert field_value(wrong.text, "name") == "Wrong size"
        assert field_value(wrong.text, "width") == "300"


def test_an_html_creative_is_previewed_only_in_a_sandboxed_frame_of_its_own(
    admin_browser: AdminBrowser,
) -> None:
    ids = setup_inventory(admin_browser)
    made = admin_browser.submit("/admin/campaigns/new", campaign_form(ids))
    campaign_id = made.headers["location"].rsplit("/", 1)[1]
    markup = '<a href="%%CLICK_URL%%"><script>document.title="x"</script>Hi</a>'
    answer = admin_browser.submit(
        "/admin/creatives/new",
        {
            "campaign": campaign_id,
            "kind": "html",
            "name": "Rich",
            "click_url": "https://acme.test/",
            "width": "300",
            "height": "250",
            "html": markup,
        },
    )
    page = admin_browser.follow(answer).text
    creative_id = answer.headers["location"].rsplit("/", 1)[1]
    assert "srcdoc" not in page
    assert "<script>document.title" not in page
    frame = re.search(r'<iframe class="preview-frame" src="([^"]+)" sandbox="([^"]+)"', page)
    assert frame is not None
    assert frame.group(1) == f"/admin/creatives/{creative_id}/frame"
    assert "allow-same-origin" not in frame.group(2) and "allow-scripts" in frame.group(2)
    document = admin_browser.get(frame.group(1))
    assert document.headers["content-security-policy"].startswith("sandbox allow-scripts")
    assert '<a href="https://acme.test/"><script>' in document.text


def test_a_pending_creative_is_approved(admin_browser: AdminBrowser) -> None:
    ids = setup_inventory(admin_browser)
    made = admin_browser.submit("/admin/campaigns/new", campaign_form(ids))
    campaign_id = made.headers["location"].rsplit("/", 1)[1]
    answer = admin_browser.submit(
        "/admin/creatives/new",
        {
            "campaign": campaign_id,
            "kind": "text",
            "name": "Words",
            "click_url": "https://acme.test/",
            "title": "Fly for less",
            "body": "Spring fares",
            "cta": "Book",
            "status": "pending",
        },
    )
    path = answer.headers["location"]
    page = admin_browser.follow(answer).text
    assert "Waiting for your approval" in page
    assert "<strong>Fly for less</strong>" in page
    approved = admin_browser.submit(
        f"{path}/review", {"decision": "approve", "version": "1", "review_note": ""}, page=path
    )
    assert "Creative approved" in admin_browser.follow(approved).text
    with admin_browser.engine.connect() as connection:
        creative_id = int(path.rsplit("/", 1)[1])
        assert creatives.get_creative(connection, creative_id=creative_id).status == "active"


def test_the_slot_previews_what_it_serves_without_counting(
    admin_browser: AdminBrowser, admin_engine: Engine
) -> None:
    ids = setup_inventory(admin_browser)
    form = campaign_form(
        ids,
        roadblock="",
        tier="standard",
        slots=[ids["top"]],
        targeting_paths="",
        targeting_keywords="",
        targeting_countries="",
        targeting_devices=[],
        targeting_days=[],
        targeting_hours=[],
    )
    made = admin_browser.submit("/admin/campaigns/new", form)
    campaign_id = made.headers["location"].rsplit("/", 1)[1]
    admin_browser.submit(
        "/admin/creatives/new",
        {
            "campaign": campaign_id,
            "kind": "text",
            "name": "Words",
            "click_url": "https://acme.test/",
            "title": "Fly for less",
        },
    )
    slot_path = f"/admin/slots/{ids['top']}"
    page = wait_for(
        lambda: (
            (text := admin_browser.get(slot_path).text)
            and "A reader would now see" in text
            and text
        ),
        "the new campaign in the slot's preview",
        seconds=10,
    )
    assert ">Words</a> of campaign" in page
    sports = campaign_form(
        ids,
        name="Sports only",
        roadblock="",
        tier="sponsorship",
        slots=[ids["top"]],
        targeting_paths="/sports/*",
        targeting_keywords="",
        targeting_countries="",
        targeting_devices=[],
        targeting_days=[],
        targeting_hours=[],
    )
    made = admin_browser.submit("/admin/campaigns/new", sports)
    admin_browser.submit(
        "/admin/creatives/new",
        {
            "campaign": made.headers["location"].rsplit("/", 1)[1],
            "kind": "text",
            "name": "Cricket words",
            "click_url": "https://acme.test/cricket",
            "title": "Cricket tours",
        },
    )
    # A reader on a sports page sees the sponsorship, which outranks the standard campaign.
    sports_page = wait_for(
        lambda: (
            (text := admin_browser.get(slot_path, params={"path": "/sports/cricket"}).text)
            and ">Cricket words</a> of campaign" in text
            and text
        ),
        "the sponsorship and its creative in the slot's preview on a sports page",
        seconds=10,
    )
    assert "not shown: a campaign of a higher tier won" in sports_page
    page = admin_browser.get(slot_path).text
    assert ">Sports only</a></td><td>not shown: this page path is not targeted" in page
    assert 'value="/sports/cricket"' in sports_page
    with admin_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(table(Event))).scalar() == 0
        assert connection.execute(select(func.count()).select_from(table(HourlyStat))).scalar() == 0


def test_the_campaign_page_forecasts_its_slots(admin_browser: AdminBrowser) -> None:
    ids = setup_inventory(admin_browser)
    form = campaign_form(
        ids,
        roadblock="",
        tier="standard",
        slots=[ids["top"]],
        targeting_paths="",
        targeting_keywords="",
        targeting_countries="",
        targeting_devices=[],
        targeting_days=[],
        targeting_hours=[],
    )
    made = admin_browser.submit("/admin/campaigns/new", form)
    path = made.headers["location"]
    hour = int(time.time()) // 3600 * 3600
    with admin_browser.engine.begin() as connection:
        add_hourly(
            connection,
            [
                {
                    "hour": hour - 3600 * h,
                    "site_id": 1,
                    "slot_id": int(ids["top"]),
                    "campaign_id": 0,
                    "creative_id": 0,
                    "requests": 100,
                }
                for h in range(1, 24 * 14)
            ],
        )
    start, end = date.today() + timedelta(days=1), date.today() + timedelta(days=7)
    page = admin_browser.get(
        path, params={"forecast_from": start.isoformat(), "forecast_to": end.isoformat()}
    ).text
    with admin_browser.engine.connect() as connection:
        expected = forecast(
            connection,
            site_key="news",
            slot_names=["top"],
            start=start,
            end=end,
            targeting={},
            tier="standard",
            now=time.time(),
        )[0]
    assert expected.expected > 0
    assert f"Impressions, {start} to {end}" in page
    row = re.search(r"<td>news / top</td>\s*<td class=\"num\">([\d,]+)</td>", page)
    assert row is not None and int(row.group(1).replace(",", "")) == expected.expected
    refused = admin_browser.get(path, params={"forecast_from": "soon"})
    assert refused.status_code == 400
    backwards = admin_browser.get(
        path, params={"forecast_from": end.isoformat(), "forecast_to": start.isoformat()}
    )
    assert "&#39;to&#39; is before &#39;from&#39;" in backwards.text
