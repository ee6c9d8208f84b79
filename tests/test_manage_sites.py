"""/v1/manage/sites and /v1/manage/slots over a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, insert

from adserver.core.models import Advertiser, table, utcnow
from tests.conftest import LiveServer
from tests.factories import admin, api_client, created, server_engine, token
from tests.seed import add_hourly
from tests.waiting import wait_for

__all__ = ["admin", "server_engine"]  # fixtures

SITE = {
    "key": "news",
    "name": "News",
    "domains": ["news.example", "*.news.example"],
    "timezone": "Asia/Kolkata",
    "currency": "INR",
}


def test_a_site_is_created_read_changed_listed_and_deleted(admin: httpx.Client) -> None:
    response = admin.post("/v1/manage/sites", json=SITE)
    site = created(response)
    assert response.headers["location"] == "/v1/manage/sites/news"
    assert {k: site[k] for k in SITE} == SITE
    assert site["status"] == "active"

    read = admin.get("/v1/manage/sites/news")
    assert read.json() == site
    assert read.headers["etag"] == '"v1"'
    assert admin.head("/v1/manage/sites/news").headers["etag"] == '"v1"'  # curl -I, as documented

    changed = admin.patch("/v1/manage/sites/news", json={"name": "The News", "domains": []})
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "The News"
    assert changed.json()["domains"] == []
    assert changed.json()["timezone"] == "Asia/Kolkata"  # fields not named stay
    assert changed.headers["etag"] == '"v2"'

    assert [s["key"] for s in admin.get("/v1/manage/sites").json()] == ["news"]

    gone = admin.delete("/v1/manage/sites/news")
    assert gone.json() == {"entity": "site", "id": "news", "outcome": "deleted"}
    assert admin.get("/v1/manage/sites/news").status_code == 404

    history = admin.get("/v1/manage/changes", params={"entity": "site", "id": "news"}).json()
    assert [c["action"] for c in history] == ["create", "update", "delete"]
    assert history[1]["before"] == {"name": "News", "domains": SITE["domains"]}
    assert history[1]["after"] == {"name": "The News", "domains": []}
    assert (history[1]["actor"]["kind"], history[1]["actor"]["name"]) == ("token", "admin")


def test_every_bad_field_is_named_in_one_422(admin: httpx.Client) -> None:
    response = admin.post(
        "/v1/manage/sites",
        json={
            "key": "Not A Slug",
            "domains": ["bad host!"],
            "timezone": "Mars/Olympus",
            "currency": "XYZ",
            "colour": "red",
            "id": 4,
        },
    )
    assert response.status_code == 422
    fields = response.json()["fields"]
    assert set(fields) == {"key", "name", "domains.0", "timezone", "currency", "colour", "id"}
    assert fields["colour"] == "unknown field"
    assert fields["id"] == "is read-only"
    assert "IANA" in fields["timezone"]
    assert "fields" in response.json() and response.json()["error"].startswith("invalid")

    created(admin.post("/v1/manage/sites", json=SITE))
    again = admin.post("/v1/manage/sites", json=SITE)
    assert again.status_code == 409
    assert again.json()["fields"] == {"key": "is already in use"}
    fixed = admin.patch("/v1/manage/sites/news", json={"key": "other", "name": None})
    assert fixed.status_code == 422
    assert fixed.json()["fields"] == {
        "key": "cannot change after creation",
        "name": "may not be null",
    }
    assert admin.post("/v1/manage/sites", content=b"{nope").status_code == 422
    nul = admin.post("/v1/manage/sites", json={**SITE, "key": "other", "name": "a\x00b"})
    assert nul.json()["fields"] == {"name": "may not contain NUL characters"}
    assert admin.get("/v1/manage/sites/a%00b").status_code == 404
    assert admin.get("/v1/manage/slots/99999999999999999999").status_code == 404
    assert admin.get("/v1/manage/slots", params={"after": 2**40}).status_code == 422
    broken = admin.post(
        "/v1/manage/creatives",
        content=b"--x\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 422, broken.text
    assert admin.post("/v1/manage/sites", json=[1, 2]).status_code == 422


def test_two_editors_one_wins_the_other_gets_412(admin: httpx.Client) -> None:
    created(admin.post("/v1/manage/sites", json=SITE))
    first = admin.get("/v1/manage/sites/news").headers["etag"]
    second = first  # both read the same version
    won = admin.patch("/v1/manage/sites/news", json={"name": "A"}, headers={"If-Match": first})
    assert won.status_code == 200
    lost = admin.patch("/v1/manage/sites/news", json={"name": "B"}, headers={"If-Match": second})
    assert lost.status_code == 412
    assert admin.get("/v1/manage/sites/news").json()["name"] == "A"
    stale_delete = admin.delete("/v1/manage/sites/news", headers={"If-Match": second})
    assert stale_delete.status_code == 412
    assert (
        admin.patch(
            "/v1/manage/sites/news", json={"name": "C"}, headers={"If-Match": "garbage"}
        ).status_code
        == 412
    )
    fresh = admin.get("/v1/manage/sites/news").headers["etag"]
    deleted = admin.delete("/v1/manage/sites/news", headers={"If-Match": fresh})
    assert deleted.json()["outcome"] == "deleted"


def test_lists_are_paged_with_a_link_to_the_next_page(admin: httpx.Client) -> None:
    for n in range(5):
        created(admin.post("/v1/manage/sites", json={**SITE, "key": f"site-{n}"}))
    first = admin.get("/v1/manage/sites", params={"limit": 2})
    assert [s["key"] for s in first.json()] == ["site-0", "site-1"]
    assert first.links["next"]["url"].endswith("/v1/manage/sites?limit=2&after=site-1")
    keys = [s["key"] for s in first.json()]
    url = first.links["next"]["url"]
    while url:
        page = admin.get(url)
        keys += [s["key"] for s in page.json()]
        url = page.links.get("next", {}).get("url")
    assert keys == [f"site-{n}" for n in range(5)]
    assert admin.get("/v1/manage/sites", params={"limit": 5}).headers.get("link") is None
    bad = admin.get("/v1/manage/sites", params={"limit": 1001, "after": "nowhere", "x": 1})
    assert bad.status_code == 422
    assert set(bad.json()["fields"]) == {"limit", "x"}
    assert admin.get("/v1/manage/sites", params={"after": "nowhere"}).status_code == 422


def test_slots_are_created_served_archived_and_deleted(
    admin: httpx.Client, live_server: LiveServer, server_engine: Engine
) -> None:
    created(admin.post("/v1/manage/sites", json={**SITE, "domains": ["127.0.0.1"]}))
    response = admin.post(
        "/v1/manage/slots", json={"site": "news", "name": "top-of-post", "sizes": ["728x90"]}
    )
    slot = created(response)
    assert response.headers["location"] == f"/v1/manage/slots/{slot['id']}"
    assert slot["site"] == "news" and slot["sizes"] == ["728x90"]

    # The new slot is known to the serving process without a restart (no ad in it yet).
    def decided() -> bool:
        with live_server.client() as reader:
            answer = reader.get("/v1/decide", params={"site": "news", "slots": "top-of-post"})
        return answer.status_code == 200 and "errors" not in answer.json()

    wait_for(decided, "the new slot to be served", seconds=5)

    bad = admin.post(
        "/v1/manage/slots",
        json={"site": "nowhere", "name": "Top Of Post", "sizes": ["728x", "fluid"]},
    )
    assert bad.status_code == 422
    assert set(bad.json()["fields"]) == {"name", "sizes.0"}  # the site is checked once valid
    dup = admin.post(
        "/v1/manage/slots", json={"site": "news", "name": "top-of-post", "sizes": ["fluid"]}
    )
    assert dup.status_code == 409
    unknown_site = admin.post(
        "/v1/manage/slots", json={"site": "nowhere", "name": "x", "sizes": ["fluid"]}
    )
    assert unknown_site.status_code == 422
    assert unknown_site.json()["fields"] == {"site": "no such site"}

    renamed = admin.patch(f"/v1/manage/slots/{slot['id']}", json={"name": "other"})
    assert renamed.json()["fields"] == {"name": "cannot change after creation"}
    resized = admin.patch(
        f"/v1/manage/slots/{slot['id']}", json={"sizes": ["728x90", "fluid"], "fallback_html": None}
    )
    assert resized.json()["sizes"] == ["728x90", "fluid"]

    other = created(
        admin.post("/v1/manage/slots", json={"site": "news", "name": "side", "sizes": ["300x250"]})
    )
    assert [s["name"] for s in admin.get("/v1/manage/slots", params={"site": "news"}).json()] == [
        "top-of-post",
        "side",
    ]
    assert admin.get("/v1/manage/slots", params={"site": "elsewhere"}).json() == []

    # A slot with statistics is archived, and stays listed; one without is deleted.
    now = int(utcnow().timestamp()) // 3600 * 3600
    with server_engine.begin() as connection:
        add_hourly(
            connection,
            [{"hour": now, "site_id": 1, "slot_id": slot["id"], "campaign_id": 0,
              "creative_id": 0, "requests": 3}],
        )  # fmt: skip
    assert admin.delete(f"/v1/manage/slots/{slot['id']}").json()["outcome"] == "archived"
    assert admin.get(f"/v1/manage/slots/{slot['id']}").json()["status"] == "archived"
    archived = admin.get("/v1/manage/slots", params={"status": "archived"}).json()
    assert [s["id"] for s in archived] == [slot["id"]]
    assert admin.delete(f"/v1/manage/slots/{other['id']}").json()["outcome"] == "deleted"
    # The site has a slot with statistics: it is archived, not deleted.
    assert admin.delete("/v1/manage/sites/news").json()["outcome"] == "archived"
    assert admin.get("/v1/manage/sites/news").json()["status"] == "archived"


def test_tokens_other_than_admin_cannot_manage_sites(
    live_server: LiveServer, server_engine: Engine
) -> None:
    with server_engine.begin() as connection:
        connection.execute(insert(table(Advertiser)).values(id=7, name="Acme", email=""))
    with api_client(live_server, token(server_engine, name="acme", advertiser_id=7)) as client:
        assert client.get("/v1/manage/sites").status_code == 403
        assert client.post("/v1/manage/slots", json={}).status_code == 403
    with live_server.client() as anonymous:
        assert anonymous.get("/v1/manage/sites").status_code == 401
