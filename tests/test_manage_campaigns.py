"""/v1/manage/advertisers and /v1/manage/campaigns over a real server, on SQLite and
PostgreSQL: create, read, change, serve, archive; validation; scoping by token."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine

from adserver.core.models import utcnow
from tests.conftest import LiveServer
from tests.factories import (
    admin,
    api_client,
    created,
    inventory_through_api,
    served,
    server_engine,
    token,
)
from tests.seed import add_hourly
from tests.waiting import wait_for

__all__ = ["admin", "server_engine"]  # fixtures


def test_a_campaign_is_served_changed_and_archived_within_2_s_of_each_write(
    admin: httpx.Client, live_server: LiveServer, server_engine: Engine
) -> None:
    ids = inventory_through_api(admin, servers=(live_server.url,))
    chosen = wait_for(lambda: served(live_server), "the new campaign to serve", seconds=2)
    assert (chosen["campaign"], chosen["creative"]) == (ids["campaign"], ids["creative"])

    url = f"/v1/manage/campaigns/{ids['campaign']}"
    assert admin.patch(url, json={"status": "paused"}).json()["status"] == "paused"
    wait_for(lambda: served(live_server) is None, "the paused campaign to stop", seconds=2)
    admin.patch(url, json={"status": "active"})
    wait_for(lambda: served(live_server), "the campaign to serve again", seconds=2)
    # Targeting compiled on write decides at once: a path the page does not match.
    admin.patch(url, json={"targeting": {"paths": ["/sport/*"]}})
    wait_for(lambda: served(live_server) is None, "path targeting to apply", seconds=2)

    hour = int(utcnow().timestamp()) // 3600 * 3600
    with server_engine.begin() as connection:
        add_hourly(
            connection,
            [{"hour": hour, "site_id": 1, "slot_id": ids["slot"], "campaign_id": ids["campaign"],
              "creative_id": ids["creative"], "impressions": 5}],
        )  # fmt: skip
    assert admin.delete(url).json() == {
        "entity": "campaign",
        "id": str(ids["campaign"]),
        "outcome": "archived",
    }
    assert admin.get(url).json()["status"] == "archived"
    history = admin.get("/v1/manage/changes", params={"entity": "campaign", "id": ids["campaign"]})
    assert [c["action"] for c in history.json()] == [
        "create", "update", "update", "update", "archive",
    ]  # fmt: skip
    assert history.json()[1]["before"] == {"status": "active"}


CAMPAIGN = {"name": "Spring", "price": "1.25", "slots": []}


def test_every_bad_campaign_field_is_named(admin: httpx.Client) -> None:
    advertiser = created(admin.post("/v1/manage/advertisers", json={"name": "Acme"}))
    response = admin.post(
        "/v1/manage/campaigns",
        json={
            "advertiser": advertiser["id"],
            "name": "",
            "status": "running",
            "tier": "gold",
            "price": "2.5.0",
            "weight": 0,
            "starts_at": "next tuesday",
            "goal": {"kind": "views", "total": 10},
            "budget": -5,
            "frequency_cap": {"count": 3, "per": "fortnight"},
            "targeting": {"paths": ["sport"], "days": [7], "countries": ["IND"], "colour": 1},
            "rotation": "random",
            "labels": ["Not a slug"],
        },
    )
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {
        "name", "status", "tier", "price", "weight", "starts_at", "goal.kind", "budget",
        "frequency_cap.per", "targeting.paths.0", "targeting.days.0", "targeting.countries.0",
        "targeting.colour", "rotation", "labels.0",
    }  # fmt: skip

    rules = admin.post(
        "/v1/manage/campaigns",
        json={
            "advertiser": advertiser["id"],
            **CAMPAIGN,
            "starts_at": "2026-12-10T00:00:00",
            "ends_at": "2026-12-01T00:00:00",
            "roadblock": True,
            "targeting": {"paths": ["/[z-a]"]},
            "slots": [9999],
        },
    )
    assert rules.status_code == 422
    assert set(rules.json()["fields"]) == {"ends_at", "roadblock", "targeting", "slots"}
    huge = admin.post(
        "/v1/manage/campaigns",
        json={
            "advertiser": 2**40,
            **CAMPAIGN,
            "slots": [2**40],
            "goal": {"kind": "clicks", "total": 2**40},
        },
    )
    assert set(huge.json()["fields"]) == {"advertiser", "slots.0", "goal.total"}
    assert admin.get(f"/v1/manage/campaigns/{2**40}").status_code == 404
    assert admin.get(f"/v1/manage/creatives/{2**63}").status_code == 404
    assert admin.get(f"/v1/manage/advertisers/{2**63}").status_code == 404
    nobody = admin.post("/v1/manage/campaigns", json={"advertiser": 999, **CAMPAIGN})
    assert nobody.json()["fields"] == {"advertiser": "no such advertiser"}


def test_patch_replaces_named_fields_and_flight_times_come_back_as_given(
    admin: httpx.Client,
) -> None:
    advertiser = created(admin.post("/v1/manage/advertisers", json={"name": "Acme"}))
    campaign = created(
        admin.post(
            "/v1/manage/campaigns",
            json={
                "advertiser": advertiser["id"],
                **CAMPAIGN,
                "starts_at": "2026-12-01T09:00:00+05:30",
                "ends_at": "2026-12-31T23:59:00",
                "goal": {"kind": "impressions", "total": 10000, "daily": 500},
                "budget": "100",
                "targeting": {"paths": ["/news/*"], "keywords": ["cricket"]},
                "frequency_cap": {"count": 3, "per": "day"},
            },
        )
    )
    assert campaign["starts_at"] == "2026-12-01T09:00:00+05:30"
    assert campaign["ends_at"] == "2026-12-31T23:59:00"
    assert (campaign["price"], campaign["budget"]) == ("1.25", "100.00")
    assert campaign["goal"] == {"kind": "impressions", "total": 10000, "daily": 500}
    url = f"/v1/manage/campaigns/{campaign['id']}"
    changed = admin.patch(
        url, json={"targeting": {"devices": ["mobile"]}, "goal": None, "budget": None}
    ).json()
    assert changed["targeting"] == {"devices": ["mobile"]}  # replaced whole, not merged
    assert (changed["goal"], changed["budget"]) == (None, None)
    assert changed["frequency_cap"] == {"count": 3, "per": "day"}  # not named: kept
    refused = admin.patch(url, json={"advertiser": 2, "id": 5, "version": 9})
    assert refused.json()["fields"] == {
        "advertiser": "cannot change after creation",
        "id": "is read-only",
        "version": "is read-only",
    }
    local = admin.patch(url, json={"starts_at": "2026-12-01T09:00:00"}).json()
    assert local["starts_at"] == "2026-12-01T09:00:00"  # now each site's own wall clock
    backwards = admin.patch(url, json={"ends_at": "2026-11-01T00:00:00"})
    assert backwards.json()["fields"] == {"ends_at": "must be after starts_at"}


def test_lists_filter_by_advertiser_site_and_status(admin: httpx.Client) -> None:
    first = inventory_through_api(admin, site="news")
    second = inventory_through_api(admin, site="blog")
    paused = created(
        admin.post(
            "/v1/manage/campaigns",
            json={"advertiser": first["advertiser"], "name": "Later", "status": "paused"},
        )
    )

    def ids(**params: Any) -> list[int]:
        response = admin.get("/v1/manage/campaigns", params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()]

    assert ids() == [first["campaign"], second["campaign"], paused["id"]]
    assert ids(advertiser=first["advertiser"]) == [first["campaign"], paused["id"]]
    assert ids(site="blog") == [second["campaign"]]
    assert ids(status="paused") == [paused["id"]]
    assert ids(limit=1, after=first["campaign"]) == [second["campaign"]]
    assert admin.get("/v1/manage/campaigns", params={"status": "gone"}).status_code == 422


def test_an_advertiser_token_sees_only_its_own(
    admin: httpx.Client, live_server: LiveServer, server_engine: Engine
) -> None:
    mine = inventory_through_api(admin, site="news")
    theirs = inventory_through_api(admin, site="blog")
    bearer = token(server_engine, name="acme", advertiser_id=mine["advertiser"])
    with api_client(live_server, bearer) as client:
        assert [a["id"] for a in client.get("/v1/manage/advertisers").json()] == [
            mine["advertiser"]
        ]
        assert [c["id"] for c in client.get("/v1/manage/campaigns").json()] == [mine["campaign"]]
        assert client.get(f"/v1/manage/campaigns/{mine['campaign']}").status_code == 200
        for path in (
            f"/v1/manage/campaigns/{theirs['campaign']}",
            f"/v1/manage/advertisers/{theirs['advertiser']}",
            f"/v1/manage/creatives/{theirs['creative']}",
        ):
            assert client.get(path).status_code == 404
        assert client.get("/v1/manage/campaigns/99999").status_code == 404
        assert client.patch(f"/v1/manage/campaigns/{mine['campaign']}", json={}).status_code == 403
        assert client.post("/v1/manage/advertisers", json={"name": "x"}).status_code == 403


def test_advertisers_are_named_once_and_archived_with_their_campaigns(
    admin: httpx.Client, live_server: LiveServer
) -> None:
    ids = inventory_through_api(admin)
    assert admin.post("/v1/manage/advertisers", json={"name": "Acme news"}).status_code == 409
    bad = admin.post("/v1/manage/advertisers", json={"name": "B", "email": "not-an-address"})
    assert bad.json()["fields"] == {"email": "must be an e-mail address (or empty)"}
    lonely = created(admin.post("/v1/manage/advertisers", json={"name": "Nobody"}))
    url = f"/v1/manage/advertisers/{lonely['id']}"
    seen = admin.get(url)
    renamed = admin.patch(
        url,
        json={"name": "Somebody", "email": "s@b.example"},
        headers={"If-Match": seen.headers["etag"]},
    )
    assert (renamed.json()["name"], renamed.json()["email"]) == ("Somebody", "s@b.example")
    stale = admin.patch(url, json={"name": "Again"}, headers={"If-Match": seen.headers["etag"]})
    assert stale.status_code == 412
    assert admin.patch(url, json={"name": "Acme news"}).status_code == 409  # taken
    gone = admin.delete(f"/v1/manage/advertisers/{lonely['id']}").json()
    assert gone["outcome"] == "deleted"
    wait_for(lambda: served(live_server), "the campaign to serve", seconds=2)
    archived = admin.delete(f"/v1/manage/advertisers/{ids['advertiser']}").json()
    assert archived["outcome"] == "archived"
    campaign = admin.get(f"/v1/manage/campaigns/{ids['campaign']}").json()
    assert campaign["status"] == "archived"
    wait_for(lambda: served(live_server) is None, "the archived campaigns to stop", seconds=2)
