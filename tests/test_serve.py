"""The public HTTP API over a real server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import Engine, text

from adserver.tracking.tokens import TokenClaims, TokenSigner
from tests.conftest import OPS, SECRET, LiveServer
from tests.seed import LANDING, three_slot_site

pytestmark = pytest.mark.usefixtures("live_server")


@pytest.fixture
def slots(engine: Engine, live_server: LiveServer) -> dict[str, int]:
    ids = three_slot_site(engine)
    live_server.runtime.inventory.rebuild()
    return ids


def events(engine: Engine) -> list[tuple[str, bool, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT kind, valid, reason FROM event ORDER BY at, kind"))
        return [(r.kind, bool(r.valid), r.reason) for r in rows]


def decide(server: LiveServer, *names: str) -> dict[str, object]:
    with server.client() as client:
        answer = client.get(
            "/v1/decide",
            params={
                "site": "news",
                "slots": ",".join(names),
                "url": "http://localhost/2026/story.html",
            },
        )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_one_call_decides_three_slots(live_server: LiveServer, slots: dict[str, int]) -> None:
    answer = decide(live_server, "top", "below", "side")
    decisions = answer["decisions"]
    assert isinstance(decisions, dict)
    assert set(decisions) == {"top", "below", "side"}
    top, side = decisions["top"], decisions["side"]
    assert top["kind"] == "image" and (top["width"], top["height"]) == (728, 90)
    assert 'rel="sponsored noopener"' in top["html"]
    assert top["click_url"] in top["html"].replace("&amp;", "&")
    assert side["kind"] == "html" and (side["width"], side["height"]) == (300, 250)
    # The leaderboard campaign is on top already: no campaign twice on one page.
    assert decisions["below"] is None
    for decision in (top, side):
        assert decision["impression_url"].startswith(f"{live_server.url}/v1/imp/")
        assert decision["view_url"].startswith(f"{live_server.url}/v1/view/")
    assert "errors" not in answer


def test_post_with_json_body_decides_with_sizes(
    live_server: LiveServer, slots: dict[str, int]
) -> None:
    body = {"site": "news", "slots": [{"name": "below", "sizes": ["300x250"]}]}
    with live_server.client() as client:
        answer = client.post(
            "/v1/decide", content=json.dumps(body), headers={"Content-Type": "text/plain"}
        )
    assert answer.status_code == 200
    # below's only campaign has a 728x90 creative: narrowed to 300x250, nothing fits.
    assert answer.json()["decisions"] == {"below": None}


def test_slot_with_no_campaign_gets_null(live_server: LiveServer, slots: dict[str, int]) -> None:
    assert decide(live_server, "empty")["decisions"] == {"empty": None}


def test_unknown_slot_is_listed_under_errors(
    live_server: LiveServer, slots: dict[str, int]
) -> None:
    answer = decide(live_server, "top", "nowhere")
    assert answer["decisions"]["nowhere"] is None  # type: ignore[index]
    assert answer["decisions"]["top"] is not None  # type: ignore[index]
    assert answer["errors"] == ["unknown slot 'nowhere'"]


def test_unknown_site_is_404(live_server: LiveServer, slots: dict[str, int]) -> None:
    with live_server.client() as client:
        answer = client.get("/v1/decide", params={"site": "elsewhere", "slots": "top"})
    assert answer.status_code == 404
    assert answer.json() == {"error": "unknown site 'elsewhere'"}
    assert answer.headers["access-control-allow-origin"] == "*"  # the tag can read why


@pytest.mark.parametrize(
    ("params", "body", "message"),
    [
        ({"slots": "top"}, None, "'site' is required"),
        ({"site": "news"}, None, "'slots' must name at least one slot"),
        ({"site": "news", "slots": "[{"}, None, "'slots' is not valid JSON"),
        ({"site": "news", "slots": "top", "fc": "{oops"}, None, "'fc' is not valid JSON"),
        ({"site": "news", "slots": "top", "fc": '{"x": [1]}'}, None, "is not a campaign id"),
        ({"site": "news", "slots": "top", "fc": '{"1": "soon"}'}, None, "list of UNIX times"),
        (
            {"site": "news", "slots": '[{"name": "top", "sizes": ["big"]}]'},
            None,
            "is not WIDTHxHEIGHT",
        ),
        ({"site": "news", "slots": "bad name!"}, None, "is not valid"),
        ({}, b"{not json", "not valid JSON"),
        ({}, b"[1, 2]", "must be a JSON object"),
    ],
)
def test_malformed_parameters_are_400_with_a_message(
    live_server: LiveServer,
    slots: dict[str, int],
    params: dict[str, str],
    body: bytes | None,
    message: str,
) -> None:
    with live_server.client() as client:
        if body is None:
            answer = client.get("/v1/decide", params=params)
        else:
            answer = client.post("/v1/decide", params=params, content=body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_cors_allows_the_sites_domains_only(live_server: LiveServer, slots: dict[str, int]) -> None:
    with live_server.client() as client:
        ok = client.get(
            "/v1/decide",
            params={"site": "news", "slots": "top"},
            headers={"Origin": "http://localhost:8080"},
        )
        other = client.get(
            "/v1/decide",
            params={"site": "news", "slots": "top"},
            headers={"Origin": "https://evil.example"},
        )
    assert ok.headers["access-control-allow-origin"] == "http://localhost:8080"
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers


def test_impression_sent_three_times_counts_once(
    live_server: LiveServer, engine: Engine, slots: dict[str, int]
) -> None:
    decision = decide(live_server, "top")["decisions"]["top"]  # type: ignore[index]
    with live_server.client() as client:
        answers = [client.post(decision["impression_url"]) for _ in range(3)]
    assert [a.status_code for a in answers] == [204, 204, 204]
    assert events(engine) == [
        ("imp", True, None),
        ("imp", False, "duplicate"),
        ("imp", False, "duplicate"),
    ]


def test_impression_pixel_answers_a_gif(live_server: LiveServer, slots: dict[str, int]) -> None:
    decision = decide(live_server, "top")["decisions"]["top"]  # type: ignore[index]
    with live_server.client() as client:
        answer = client.get(decision["impression_url"] + "?img=1")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert answer.content.startswith(b"GIF89a")


def test_view_and_click_before_any_impression_are_invalid(
    live_server: LiveServer, engine: Engine, slots: dict[str, int]
) -> None:
    decision = decide(live_server, "top")["decisions"]["top"]  # type: ignore[index]
    with live_server.client() as client:
        assert client.post(decision["view_url"]).status_code == 204
        assert client.get(decision["click_url"]).status_code == 302
    assert sorted(events(engine)) == [
        ("click", False, "no-impression"),
        ("view", False, "no-impression"),
    ]


def test_click_redirects_to_the_stored_landing_url_only(
    live_server: LiveServer, engine: Engine, slots: dict[str, int]
) -> None:
    decision = decide(live_server, "top")["decisions"]["top"]  # type: ignore[index]
    with live_server.client() as client:
        client.post(decision["impression_url"])
        answer = client.get(
            decision["click_url"],
            params={"url": "https://evil.example/", "to": "https://evil.example/"},
            headers={"Referer": "https://evil.example/"},
        )
    assert answer.status_code == 302
    assert answer.headers["location"] == LANDING
    assert ("click", True, None) in events(engine)


def test_bot_impressions_are_kept_as_invalid(
    live_server: LiveServer, engine: Engine, slots: dict[str, int]
) -> None:
    decision = decide(live_server, "top")["decisions"]["top"]  # type: ignore[index]
    with live_server.client() as client:
        answer = client.post(
            decision["impression_url"],
            headers={
                "User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
            },
        )
    assert answer.status_code == 204
    assert events(engine) == [("imp", False, "bot")]


def test_prefetched_impressions_are_kept_as_invalid(
    live_server: LiveServer, engine: Engine, slots: dict[str, int]
) -> None:
    decision = decide(live_server, "top")["decisions"]["top"]  # type: ignore[index]
    with live_server.client() as client:
        client.post(decision["impression_url"], headers={"Sec-Purpose": "prefetch"})
    assert events(engine) == [("imp", False, "prefetch")]


def test_forged_token_is_refused_and_kept(
    live_server: LiveServer, engine: Engine, slots: dict[str, int]
) -> None:
    decision = decide(live_server, "top")["decisions"]["top"]  # type: ignore[index]
    token = decision["impression_url"].rsplit("/", 1)[1]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with live_server.client() as client:
        beacon = client.post(f"/v1/imp/{forged}")
        garbage = client.post("/v1/imp/not-a-token")
        click = client.get(f"/v1/click/{forged}")
    assert beacon.status_code == 403
    assert beacon.json() == {"error": "this beacon's token is not valid"}
    assert garbage.status_code == 403
    assert click.status_code == 400
    assert "not valid" in click.text
    assert sorted(events(engine)) == [
        ("click", False, "forged"),
        ("imp", False, "forged"),
        ("imp", False, "forged"),
    ]


def test_expired_token_is_refused_and_kept(
    live_server: LiveServer, engine: Engine, slots: dict[str, int]
) -> None:
    decision = decide(live_server, "top")["decisions"]["top"]  # type: ignore[index]
    signer = TokenSigner(SECRET)
    token = decision["impression_url"].rsplit("/", 1)[1]
    claims = signer.verify(token, now=int(time.time()), ttl=60).claims
    assert claims is not None
    old = TokenClaims(
        claims.decision_id,
        claims.site_id,
        claims.slot_id,
        claims.campaign_id,
        claims.creative_id,
        int(time.time()) - 3 * 86400,
    )
    stale = signer.sign(old)
    with live_server.client() as client:
        beacon = client.post(f"/v1/imp/{stale}")
        click = client.get(f"/v1/click/{stale}")
    assert beacon.status_code == 410
    assert beacon.json() == {"error": "this beacon's token has expired"}
    assert click.status_code == 302  # the reader still lands, uncounted
    assert click.headers["location"] == LANDING
    assert sorted(events(engine)) == [("click", False, "expired"), ("imp", False, "expired")]


def test_slot_frame_is_a_whole_document_with_a_pixel(
    live_server: LiveServer, slots: dict[str, int]
) -> None:
    with live_server.client() as client:
        answer = client.get("/v1/slot/news/side.html")
        unknown = client.get("/v1/slot/news/nowhere.html")
    assert answer.status_code == 200
    assert answer.text.startswith("<!doctype html>")
    assert 'sandbox="allow-scripts allow-popups allow-popups-to-escape-sandbox"' in answer.text
    assert "/v1/imp/" in answer.text and "?img=1" in answer.text
    assert "frame-ancestors" in answer.headers["content-security-policy"]
    assert unknown.status_code == 404


def test_creative_image_is_served_cacheable(live_server: LiveServer, slots: dict[str, int]) -> None:
    decision = decide(live_server, "top")["decisions"]["top"]  # type: ignore[index]
    src = decision["html"].split('src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    with live_server.client() as client:
        image = client.get(src)
        missing = client.get("/v1/asset/99999")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert "immutable" in image.headers["cache-control"]
    assert missing.status_code == 404


def test_tag_js_is_cacheable_and_versioned(live_server: LiveServer) -> None:
    with live_server.client() as client:
        first = client.get("/tag.js")
        again = client.get("/tag.js", headers={"If-None-Match": first.headers["etag"]})
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/javascript")
    assert "max-age" in first.headers["cache-control"]
    assert again.status_code == 304


def test_healthz_reports_database_and_inventory(
    live_server: LiveServer, slots: dict[str, int]
) -> None:
    with live_server.client() as client:
        answer = client.get("/healthz", headers=OPS)
    assert answer.status_code == 200
    body = answer.json()
    assert body["database"] == "ok"
    assert body["inventory"]["sites"] == 1
    assert body["spool_depth"] == 0


def test_slot_frame_errors_never_echo_markup(
    live_server: LiveServer, slots: dict[str, int]
) -> None:
    with live_server.client() as client:
        answer = client.get("/v1/slot/news/<img src=x onerror=alert(1)>.html")
    assert answer.status_code == 400
    assert "<img" not in answer.text  # escaped, never markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in answer.text
