"""Share links: made over /v1/manage/share-links, opened logged out at /share/TOKEN showing one
campaign and nothing else, revocable, expiring, and scoped to the advertiser that owns them."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text, update

from adserver.core.models import ShareLink, table
from tests.conftest import LiveServer
from tests.factories import api_client, created, token
from tests.test_stats import seed_world

MARCH = {"range": "custom", "from": "2026-03-01", "to": "2026-03-31"}
PATH = "/v1/manage/share-links"


@pytest.fixture
def world(live_server: LiveServer, engine: Engine) -> dict[str, Any]:
    ids = seed_world(engine)
    return {
        **ids,
        "admin": token(engine),
        "acme": token(engine, name="acme", advertiser_id=ids["acme"]),
        "bolt": token(engine, name="bolt", advertiser_id=ids["bolt"]),
    }


def make_link(server: LiveServer, bearer: str, campaign: int, **fields: Any) -> dict[str, Any]:
    with api_client(server, bearer) as client:
        return created(client.post(PATH, json={"campaign": campaign, **fields}))


def open_link(server: LiveServer, link: str, **params: str) -> httpx.Response:
    """A visit with no cookie and no token: the link is all it has."""
    with httpx.Client() as client:
        return client.get(link, params=params)


def test_a_link_opens_one_campaigns_dashboard_logged_out(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    link = make_link(live_server, world["acme"], world["a1"])
    assert link["campaign"] == world["a1"] and link["active"] is True
    assert link["url"].startswith(live_server.url + "/share/")
    page = open_link(live_server, link["url"], **MARCH)
    assert page.status_code == 200, page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in page.headers["cache-control"]
    html = page.text
    assert "Acme Delhi" in html
    # The advertiser's other campaign, and everything of others, stays out of sight.
    assert "Acme London" not in html and "acme-uk" not in html and "Bolt" not in html
    assert 'href="/admin' not in html and 'href="/dashboard' not in html
    # 97 valid impressions of Acme Delhi in March (80 + 10 on the 10th, 7 on the 11th).
    assert re.search(r"Impressions</p>\s*<p class=\"figure-value\">97<", html)
    for href in re.findall(r'href="([^"]+)"', html):
        if href.startswith("/") and not href.startswith("/static/"):
            assert href.startswith(link["url"][len(live_server.url) :]), href


def test_the_csv_of_a_shared_table_has_the_figures_shown(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    link = make_link(live_server, world["admin"], world["a1"])
    answer = open_link(live_server, link["url"] + "/days.csv", **MARCH)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 31
    by_day = {row["Day"]: row for row in rows}
    assert by_day["2026-03-10"]["Impressions"] == "90"
    assert by_day["2026-03-10"]["CTR (%)"] == "5.56"
    assert by_day["2026-03-10"]["Spend (USD)"] == "0.18"
    assert by_day["2026-03-11"]["Impressions"] == "7"
    assert open_link(live_server, link["url"] + "/secrets.csv").status_code == 404


def test_revoked_expired_and_forged_links_open_nothing(
    live_server: LiveServer, world: dict[str, Any], engine: Engine
) -> None:
    revoked = make_link(live_server, world["acme"], world["a1"])
    soon = datetime.now(UTC) + timedelta(hours=1)
    expiring = make_link(live_server, world["acme"], world["a2"], expires_at=soon.isoformat())
    assert expiring["expires_at"] is not None
    with api_client(live_server, world["acme"]) as client:
        answer = client.delete(f"{PATH}/{revoked['id']}")
    assert answer.status_code == 200 and answer.json()["active"] is False
    assert open_link(live_server, revoked["url"]).status_code == 404
    assert open_link(live_server, expiring["url"]).status_code == 200
    links = table(ShareLink)
    with engine.begin() as connection:
        connection.execute(
            update(links)
            .where(links.c.id == expiring["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    gone = open_link(live_server, expiring["url"])
    assert gone.status_code == 404
    _, _, mac = revoked["url"].rpartition("/")[2].partition(".")
    live = make_link(live_server, world["acme"], world["a1"])
    live_id = live["url"].rpartition("/")[2].partition(".")[0]
    for forged in (f"{live_id}.{mac}", f"{live_id}.", live_id, "0.x", "x", "9" * 40):
        assert open_link(live_server, f"{live_server.url}/share/{forged}").status_code == 404
    assert open_link(live_server, live["url"]).status_code == 200
    # The link itself is never stored, only what makes it.
    with engine.connect() as connection:
        stored = " ".join(
            str(v) for row in connection.execute(text("SELECT * FROM share_link")) for v in row
        )
        changes = " ".join(
            str(v) for row in connection.execute(text("SELECT * FROM change")) for v in row
        )
    secret_part = live["url"].rpartition(".")[2]
    assert secret_part not in stored and secret_part not in changes


def test_an_advertiser_reaches_only_its_own_links(
    live_server: LiveServer, world: dict[str, Any]
) -> None:
    theirs = make_link(live_server, world["bolt"], world["b1"])
    mine = make_link(live_server, world["acme"], world["a1"])
    with api_client(live_server, world["acme"]) as acme:
        refused = acme.post(PATH, json={"campaign": world["b1"]})
        assert refused.status_code == 422
        assert refused.json()["fields"] == {"campaign": "no such campaign"}
        assert acme.get(f"{PATH}/{theirs['id']}").status_code == 404
        assert acme.delete(f"{PATH}/{theirs['id']}").status_code == 404
        assert [link["id"] for link in acme.get(PATH).json()] == [mine["id"]]
    with api_client(live_server, world["admin"]) as admin:
        everything = admin.get(PATH).json()
        assert {link["id"] for link in everything} == {mine["id"], theirs["id"]}
        assert [
            link["id"] for link in admin.get(PATH, params={"campaign": world["b1"]}).json()
        ] == [theirs["id"]]
    # Bolt's link still opens (Acme's refused revoke changed nothing).
    assert open_link(live_server, theirs["url"]).status_code == 200


def test_bad_input_is_a_clear_4xx(live_server: LiveServer, world: dict[str, Any]) -> None:
    with api_client(live_server, world["admin"]) as admin:
        past = admin.post(
            PATH, json={"campaign": world["a1"], "expires_at": "2020-01-01T00:00:00Z"}
        )
        assert past.status_code == 422 and "expires_at" in past.json()["fields"]
        naive = admin.post(PATH, json={"campaign": world["a1"], "expires_at": "2030-01-01T00:00"})
        assert naive.status_code == 422 and "expires_at" in naive.json()["fields"]
        unknown = admin.post(PATH, json={"campaign": world["a1"], "url": "x"})
        assert unknown.status_code == 422 and unknown.json()["fields"]["url"] == "unknown field"
        assert admin.post(PATH, json={"campaign": 99999}).status_code == 422
        # Ids past the database's 32-bit columns are refused, never a database error.
        assert admin.post(PATH, json={"campaign": 2**40}).status_code == 422
        assert admin.get(PATH, params={"campaign": str(2**40)}).status_code == 422
        assert admin.get(f"{PATH}/{2**40}").status_code == 404
        assert admin.delete(f"{PATH}/{2**40}").status_code == 404
    assert open_link(live_server, f"{live_server.url}/share/{2**40}.abc").status_code == 404
    link = make_link(live_server, world["admin"], world["a1"])
    bad = open_link(live_server, link["url"], range="fortnight")
    assert bad.status_code == 400 and "range" in bad.text
    with httpx.Client() as anonymous:
        assert anonymous.get(live_server.url + PATH).status_code == 401
