"""/dashboard over a live server: an advertiser user sees its own figures, the same as
/v1/stats, downloads exactly what is shown, makes and revokes share links; an admin views any
advertiser's; nobody reaches another advertiser's anything."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import Engine, insert

from adserver.accounts.passwords import hash_password
from adserver.core.models import User, table
from tests.accounts_helpers import PASSWORD, csrf_of, login
from tests.conftest import LiveServer
from tests.factories import api_client, created, token
from tests.test_stats import seed_world

MARCH = {"range": "custom", "from": "2026-03-01", "to": "2026-03-31"}


@dataclass
class World:
    server: LiveServer
    ids: dict[str, int]
    acme_token: str
    admin_token: str

    @contextlib.contextmanager
    def signed_in(self, email: str) -> Iterator[httpx.Client]:
        with self.server.client() as client:
            assert login(client, email).status_code == 303
            yield client


def add_user(engine: Engine, email: str, role: str, advertiser_id: int | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(table(User)).values(
                email=email,
                role=role,
                advertiser_id=advertiser_id,
                password_hash=hash_password(PASSWORD),
                active=True,
            )
        )


@pytest.fixture
def world(live_server: LiveServer, engine: Engine) -> Iterator[World]:
    ids = seed_world(engine)
    add_user(engine, "ops@example.com", "admin", None)
    add_user(engine, "buyer@acme.test", "advertiser", ids["acme"])
    add_user(engine, "buyer@bolt.test", "advertiser", ids["bolt"])
    yield World(
        live_server,
        ids,
        acme_token=token(engine, name="acme", advertiser_id=ids["acme"]),
        admin_token=token(engine),
    )


def table_csv(client: httpx.Client, name: str, **params: str) -> list[dict[str, str]]:
    answer = client.get(f"/dashboard/{name}.csv", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def html_table(html: str, name: str) -> list[list[str]]:
    """The cells of one table of the page, as text, header row first."""
    body = html.split(f'id="{name}-table"', 1)[1].split("</table>", 1)[0]
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        rows.append([re.sub(r"<[^>]+>", "", c).strip() for c in cells])
    return rows


def test_an_advertiser_sees_its_figures_as_v1_stats_gives_them(world: World) -> None:
    with api_client(world.server, world.acme_token) as api:
        stats: dict[str, Any] = api.get(
            "/v1/stats", params={"from": "2026-03-01", "to": "2026-03-31", "by": "campaign"}
        ).json()
    with world.signed_in("buyer@acme.test") as client:
        page = client.get("/dashboard", params=MARCH)
        assert page.status_code == 200, page.text
        html = page.text
        totals = stats["totals"]
        for label, value in (
            ("Impressions", f"{totals['impressions']:,}"),
            ("Clicks", f"{totals['clicks']:,}"),
            ("Spend (USD)", totals["spend"]),
            ("eCPM (USD)", totals["ecpm"]),
            ("CTR", f"{Decimal(str(totals['ctr'])) * 100:.2f}%"),
        ):
            assert re.search(
                rf">{re.escape(label)}</p>\s*<p class=\"figure-value\">{re.escape(value)}<", html
            ), label
        assert "Bolt" not in html and "=Bolt side" not in html
        campaigns = table_csv(client, "campaigns", **MARCH)
        by_name = {row["Campaign"]: row for row in campaigns}
        assert set(by_name) == {"Acme Delhi", "Acme London"}
        for row in stats["rows"]:
            shown = by_name[row["campaign_name"]]
            assert int(shown["Impressions"]) == row["impressions"]
            assert int(shown["Clicks"]) == row["clicks"]
            assert shown["Spend (USD)"] == row["spend"]
            assert shown["eCPM (USD)"] == (row["ecpm"] or "")
        # The CSV has exactly the figures the page's table shows (bar thousands separators).
        shown_rows = html_table(html, "campaigns")
        header, *cells = shown_rows
        assert (
            header[: len(campaigns[0])]
            == [h.replace(" (%)", "") for h in campaigns[0] if h in header or h.endswith("(%)")][
                : len(header)
            ]
        )
        for csv_row, page_row in zip(campaigns, cells, strict=True):
            for column, value in zip(header, page_row, strict=True):
                key = column if column in csv_row else f"{column} (%)"
                assert (csv_row[key] or "—") == value.replace(",", "").rstrip("%"), column


def test_days_and_hours_add_up_to_the_top_line(world: World) -> None:
    with world.signed_in("buyer@acme.test") as client:
        days = table_csv(client, "days", **MARCH)
        assert len(days) == 31
        assert sum(int(row["Impressions"]) for row in days) == 197
        hours = table_csv(
            client, "chart", range="custom", **{"from": "2026-03-10"}, to="2026-03-10"
        )
        assert len(hours) == 24
        assert sum(int(row["Impressions"]) for row in hours) == 90
        assert hours[0]["Hour"].startswith("2026-03-10 00:00")
        daily_chart = table_csv(client, "chart", **MARCH)
        assert [row["Day"] for row in daily_chart] == [row["Day"] for row in days]
        assert daily_chart[0]["Previous day"] == "2026-01-29"


def test_an_advertiser_reaches_nothing_of_another(world: World) -> None:
    bolt, b1 = str(world.ids["bolt"]), str(world.ids["b1"])
    with api_client(world.server, world.admin_token) as admin:
        theirs = created(admin.post("/v1/manage/share-links", json={"campaign": world.ids["b1"]}))
    with world.signed_in("buyer@acme.test") as client:
        for path in ("/dashboard", "/dashboard/campaigns.csv", "/dashboard/days.csv"):
            assert client.get(path, params={"advertiser": bolt}).status_code == 404, path
            assert client.get(path, params={"campaign": b1}).status_code == 404, path
            assert client.get(path, params={"advertiser": "99999"}).status_code == 404, path
        page = client.get("/dashboard")
        csrf = csrf_of(page.text)
        shared = client.post(
            "/dashboard/share-links",
            data={"csrf_token": csrf, "campaign": b1, "advertiser": bolt},
            follow_redirects=False,
        )
        assert shared.status_code == 404
        revoked = client.post(
            f"/dashboard/share-links/{theirs['id']}/revoke",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert revoked.status_code == 404
        assert theirs["url"] not in client.get("/dashboard").text
    with httpx.Client() as anyone:
        assert anyone.get(theirs["url"]).status_code == 200


def test_logged_out_visitors_are_sent_to_login(world: World) -> None:
    with world.server.client() as client:
        for path in ("/dashboard", "/dashboard/days.csv"):
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
        refused = client.post("/dashboard/share-links", data={"campaign": "1"})
        assert refused.status_code == 403


def test_share_links_are_made_and_revoked_from_the_page(world: World) -> None:
    with world.signed_in("buyer@acme.test") as client:
        page = client.get("/dashboard")
        csrf = csrf_of(page.text)
        made = client.post(
            "/dashboard/share-links",
            data={"csrf_token": csrf, "campaign": str(world.ids["a2"]), "expires": "2099-12-31"},
            follow_redirects=True,
        )
        assert made.status_code == 200 and "A share link was made" in made.text
        link = re.search(r'value="(http://[^"]+/share/[^"]+)"', made.text)
        assert link is not None
        with httpx.Client() as anyone:
            opened = anyone.get(link.group(1), params=MARCH)
            assert opened.status_code == 200 and "Acme London" in opened.text
            assert "Acme Delhi" not in opened.text
        no_csrf = client.post("/dashboard/share-links", data={"campaign": str(world.ids["a2"])})
        assert no_csrf.status_code == 403
        link_id = re.search(r"/dashboard/share-links/(\d+)/revoke", made.text)
        assert link_id is not None
        gone = client.post(
            f"/dashboard/share-links/{link_id.group(1)}/revoke",
            data={"csrf_token": csrf},
            follow_redirects=True,
        )
        assert gone.status_code == 200 and "revoked" in gone.text
        with httpx.Client() as anyone:
            assert anyone.get(link.group(1)).status_code == 404
        bad_day = client.post(
            "/dashboard/share-links",
            data={"csrf_token": csrf, "campaign": str(world.ids["a2"]), "expires": "tomorrow"},
        )
        assert bad_day.status_code == 400


def test_an_admin_chooses_and_views_any_advertiser(world: World) -> None:
    with world.signed_in("ops@example.com") as client:
        chooser = client.get("/dashboard")
        assert chooser.status_code == 200
        assert "Acme" in chooser.text and "Bolt" in chooser.text
        bolt = client.get("/dashboard", params={"advertiser": world.ids["bolt"], **MARCH})
        assert bolt.status_code == 200
        assert "=Bolt side" in bolt.text and "Acme Delhi" not in bolt.text
        assert "viewing the dashboard as" in bolt.text
        # Links keep the advertiser chosen.
        assert f"advertiser={world.ids['bolt']}" in bolt.text.split('class="range-presets"')[1]
        rows = table_csv(client, "campaigns", advertiser=str(world.ids["bolt"]), **MARCH)
        assert [row["Campaign"] for row in rows] == ["'=Bolt side"]
        csv_text = client.get(
            "/dashboard/campaigns.csv", params={"advertiser": world.ids["bolt"], **MARCH}
        ).text
        assert "'=Bolt side" in csv_text  # a formula-looking name stays text in a spreadsheet
        one = client.get(
            "/dashboard", params={"advertiser": world.ids["acme"], "campaign": world.ids["a1"]}
        )
        assert one.status_code == 200 and "Acme London" not in one.text.split("Share links")[0]


def test_bad_ranges_and_ids_are_a_clear_400(world: World) -> None:
    with world.signed_in("buyer@acme.test") as client:
        for params in (
            {"range": "fortnight"},
            {"range": "custom", "from": "2026-03-31", "to": "2026-03-01"},
            {"range": "custom", "from": "2020-01-01", "to": "2026-01-01"},
            {"range": "custom", "from": "yesterday", "to": "2026-01-01"},
            {"campaign": "abc"},
        ):
            answer = client.get("/dashboard", params=params)
            assert answer.status_code == 400, params
        assert client.get("/dashboard/nothing.csv").status_code == 404
        for name in ("advertiser", "campaign"):
            assert client.get("/dashboard", params={name: str(2**40)}).status_code == 404


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (12, 90, 110)).save(out, "PNG")
    return out.getvalue()


def upload(
    client: httpx.Client, csrf: str, campaign: int, size: str, image: bytes
) -> httpx.Response:
    return client.post(
        "/dashboard/creatives",
        data={
            "csrf_token": csrf,
            "campaign": str(campaign),
            "name": "Autumn banner",
            "size": size,
            "click_url": "https://acme.example/autumn",
        },
        files={"image": ("banner.png", image, "image/png")},
        follow_redirects=True,
    )


def test_an_advertiser_uploads_a_creative_that_waits_for_approval(world: World) -> None:
    with world.signed_in("buyer@acme.test") as client:
        csrf = csrf_of(client.get("/dashboard").text)
        answer = upload(client, csrf, world.ids["a1"], "728x90", png(728, 90))
        assert answer.status_code == 200, answer.text
        assert "waits for the publisher&#39;s approval" in answer.text
        rows = table_csv(client, "creatives", **MARCH)
        new = [row for row in rows if row["Creative"] == "Autumn banner"]
        assert len(new) == 1 and new[0]["Status"] == "pending"
        # Another advertiser's campaign, or an image of the wrong size, is refused.
        theirs = upload(client, csrf, world.ids["b1"], "300x250", png(300, 250))
        assert theirs.status_code == 422 and "=Bolt side" not in theirs.text
        wrong = upload(client, csrf, world.ids["a1"], "728x90", png(300, 250))
        assert wrong.status_code == 422
        assert 'class="field-error"' in wrong.text and "Autumn banner" in wrong.text
    with api_client(world.server, world.admin_token) as admin:
        pending = admin.get("/v1/manage/creatives", params={"status": "pending"}).json()
        assert [c["name"] for c in pending] == ["Autumn banner"]
        rejected = admin.patch(
            f"/v1/manage/creatives/{pending[0]['id']}",
            json={"status": "rejected", "review_note": "The logo is too small to read."},
        )
        assert rejected.status_code == 200, rejected.text
    with world.signed_in("buyer@acme.test") as client:
        page = client.get("/dashboard", params=MARCH)
        assert "The logo is too small to read." in page.text
