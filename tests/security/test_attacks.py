"""Attacks an ad server gets wrong (Revive's advisories read like this list), each made against
the real app over HTTP: open redirects, forged and replayed beacons, SQL and code through
parameters and targeting rules, uploads that are not what they claim, one advertiser reaching
another's data, tampered session cookies, and script in every field a user can enter."""

from __future__ import annotations

import base64
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from adserver.core.db import make_engine
from tests.conftest import LiveServer, bound_socket, make_settings, start_server
from tests.factories import api_client, b64, created, inventory_through_api, png, token

EVIL = "https://evil.example/phish"


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    sock = bound_socket()
    live = start_server(make_settings(sqlite_url, sock.getsockname()[1], tmp_path / "s"), sock)
    yield live
    live.stop()
    sock.close()


@pytest.fixture
def engine(server: LiveServer) -> Iterator[Engine]:
    engine = make_engine(server.settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def admin(server: LiveServer, engine: Engine) -> Iterator[httpx.Client]:
    with api_client(server, token(engine)) as client:
        yield client


@pytest.fixture
def world(admin: httpx.Client, server: LiveServer) -> dict[str, Any]:
    ids = inventory_through_api(admin)
    server.runtime.inventory.rebuild()
    return ids


def decision(server: LiveServer) -> dict[str, str]:
    with server.client() as client:
        answer = client.get("/v1/decide", params={"site": "news", "slots": "top"})
    found: dict[str, str] = answer.json()["decisions"]["top"]
    assert found is not None, answer.text
    return found


def events(engine: Engine) -> list[tuple[str, bool, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT kind, valid, reason FROM event ORDER BY at, kind"))
        return [(r.kind, bool(r.valid), r.reason) for r in rows]


def test_clicks_never_redirect_where_the_request_says(
    server: LiveServer, world: dict[str, Any], admin: httpx.Client
) -> None:
    click = decision(server)["click_url"]
    with server.client() as client:
        for tail in (f"?url={EVIL}", f"?redirect={EVIL}&dest={EVIL}", "%2F..%2F..%2Fevil"):
            answer = client.get(click + tail)
            assert answer.headers.get("location") in (None, "https://acme.example/launch"), tail
        forged = client.get(f"/v1/click/{'A' * 44}?url={EVIL}")
        assert forged.status_code == 400 and "location" not in forged.headers
        assert "evil.example" not in forged.text
    for landing in (
        "javascript:alert(1)",
        "//evil.example/x",
        "data:text/html,<script>",
        "ftp://x",
    ):
        answer = admin.patch(
            f"/v1/manage/creatives/{world['creative']}", json={"click_url": landing}
        )
        assert answer.status_code == 422, landing


def test_forged_tampered_and_replayed_beacons_never_count_twice(
    server: LiveServer, world: dict[str, Any], engine: Engine
) -> None:
    found = decision(server)
    impression = found["impression_url"]
    token_part = impression.rsplit("/", 1)[1]
    flipped = token_part[:20] + ("A" if token_part[20] != "A" else "B") + token_part[21:]
    with server.client() as client:
        assert client.post(impression).status_code == 204
        for _ in range(3):  # replayed
            assert client.post(impression).status_code == 204
        assert client.post(impression.replace(token_part, flipped)).status_code == 403
        assert client.post(impression + "x").status_code == 403
        assert client.post(impression.replace("/v1/imp/", "/v1/view/")).status_code == 204
    stored = events(engine)
    assert stored.count(("imp", True, None)) == 1
    assert stored.count(("imp", False, "duplicate")) == 3
    assert stored.count(("imp", False, "forged")) == 2


SQL = ("' OR '1'='1", "1; DROP TABLE event; --", 'news" OR 1=1 --', "x' UNION SELECT * FROM user--")


def test_sql_and_code_in_parameters_and_targeting_are_only_data(
    server: LiveServer, world: dict[str, Any], admin: httpx.Client, engine: Engine
) -> None:
    with server.client() as client:
        for attack in SQL:
            decide = client.get("/v1/decide", params={"site": attack, "slots": "top"})
            assert decide.status_code in (400, 404), attack
            slots = client.get("/v1/decide", params={"site": "news", "slots": attack})
            assert slots.status_code in (200, 400), attack
    for attack in SQL:
        stats = admin.get(
            "/v1/stats", params={"from": "2026-01-01", "to": "2026-01-02", "site": attack}
        )
        assert stats.status_code == 400, attack
        listing = admin.get("/v1/manage/campaigns", params={"status": attack})
        assert listing.status_code in (200, 422), attack
    # Targeting patterns are globs, never code or SQL: odd ones are stored as text or refused.
    targeting = {
        "paths": ["/{__import__('os').system('id')}*", "/[a-", "/**/%s%n", "/' OR 1=1 --"],
        "keywords": ["'; DROP TABLE campaign; --", "{{7*7}}"],
    }
    answer = admin.patch(f"/v1/manage/campaigns/{world['campaign']}", json={"targeting": targeting})
    assert answer.status_code in (200, 422), answer.text
    server.runtime.inventory.rebuild()
    with server.client() as client:
        page = client.get(
            "/v1/decide",
            params={"site": "news", "slots": "top", "url": "http://127.0.0.1/{__import__}"},
        )
    assert page.status_code == 200
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM site")).scalar_one() == 1
        assert connection.execute(text("SELECT count(*) FROM campaign")).scalar_one() == 1
        connection.execute(text("SELECT count(*) FROM event")).scalar_one()


def test_uploads_that_are_not_what_they_claim_are_refused(
    world: dict[str, Any], admin: httpx.Client
) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    html = b"<html><script>alert(1)</script></html>"
    fake_png = b"\x89PNG\r\n\x1a\n" + html
    for data in (svg, html, fake_png, png(728, 90)[:200]):
        answer = admin.post(
            "/v1/manage/creatives",
            json={
                "campaign": world["campaign"],
                "name": "Not an image",
                "kind": "image",
                "width": 728,
                "height": 90,
                "click_url": "https://acme.example/",
                "image": b64(data),
            },
        )
        assert answer.status_code == 422, data[:20]
        assert "image" in answer.json()["fields"]


def test_an_advertiser_cannot_reach_another_advertisers_data(
    server: LiveServer, world: dict[str, Any], admin: httpx.Client, engine: Engine
) -> None:
    other = created(admin.post("/v1/manage/advertisers", json={"name": "Rival"}))
    rival_campaign = created(
        admin.post(
            "/v1/manage/campaigns",
            json={"advertiser": other["id"], "name": "Rival's", "price": "1.00"},
        )
    )
    mine = token(engine, name="acme", advertiser_id=world["advertiser"])
    with api_client(server, mine) as acme:
        for path, missing in (
            (f"/v1/manage/campaigns/{rival_campaign['id']}", "/v1/manage/campaigns/999999"),
            (f"/v1/manage/advertisers/{other['id']}", "/v1/manage/advertisers/999999"),
        ):
            assert acme.get(path).status_code == 404, path
            # Refused exactly as an id that does not exist: nothing tells the rival is there.
            for method in ("PATCH", "DELETE"):
                attempt = acme.request(method, path, json={"name": "Mine now"})
                absent = acme.request(method, missing, json={"name": "Mine now"})
                assert attempt.status_code in (403, 404), (method, path)
                assert attempt.status_code == absent.status_code, (method, path)
        listed = acme.get("/v1/manage/campaigns").json()
        assert [c["id"] for c in listed] == [world["campaign"]]
        stats = acme.get(
            "/v1/stats",
            params={"from": "2026-01-01", "to": "2026-01-02", "advertiser": other["id"]},
        )
        assert stats.status_code == 403
        assert acme.get("/v1/manage/tokens").status_code in (403, 404)
    assert admin.get(f"/v1/manage/campaigns/{rival_campaign['id']}").json()["name"] == "Rival's"


def test_tampered_session_cookies_open_nothing(server: LiveServer) -> None:
    """A cookie is looked up as a hash, never deserialised: a pickle or garbage opens nothing."""

    class Exploit:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (print, ("deserialised!",))

    payloads = [
        base64.b64encode(pickle.dumps(Exploit())).decode(),
        "x" * 4000,
        "..%2F..%2Fetc%2Fpasswd",
        '{"user": 1, "role": "admin"}',
    ]
    with server.client() as client:
        for payload in payloads:
            client.cookies.set("adserver_session", payload)
            answer = client.get("/admin", follow_redirects=False)
            assert answer.status_code in (302, 303), payload[:20]
            assert "/login" in answer.headers["location"]
            client.cookies.clear()
