"""Specification of the fast lane, ``adserver.web.fastlane``: decides and beacons reach their
endpoints without the router, and every other request still gets the router's answer."""

from __future__ import annotations

from typing import Any

import pytest

from adserver.web.serve.decide import decide_endpoint
from adserver.web.serve.events import beacon_endpoint
from adserver.web.serve.fastlane import endpoint_for
from tests.conftest import LiveServer


def scope(method: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, **extra}


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v1/decide", (decide_endpoint, {})),
        ("POST", "/v1/decide", (decide_endpoint, {})),
        ("GET", "/v1/imp/TOKEN", (beacon_endpoint, {"token": "TOKEN"})),
        ("POST", "/v1/imp/TOKEN", (beacon_endpoint, {"token": "TOKEN"})),
        ("GET", "/v1/view/TOKEN", (beacon_endpoint, {"token": "TOKEN"})),
    ],
)
def test_decides_and_beacons_take_the_lane(method: str, path: str, expected: object) -> None:
    assert endpoint_for(scope(method, path)) == expected


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("OPTIONS", "/v1/decide"),  # the CORS preflight is the router's
        ("HEAD", "/v1/imp/TOKEN"),
        ("PUT", "/v1/decide"),
        ("GET", "/v1/decide/"),
        ("GET", "/v1/imp/"),
        ("GET", "/v1/imp/TOKEN/more"),
        ("GET", "/v1/click/TOKEN"),
        ("GET", "/tag.js"),
    ],
)
def test_everything_else_goes_to_the_router(method: str, path: str) -> None:
    assert endpoint_for(scope(method, path)) is None


def test_a_mounted_app_goes_to_the_router_which_knows_its_root_path() -> None:
    assert endpoint_for(scope("GET", "/ads/v1/decide", root_path="/ads")) is None
    assert endpoint_for({"type": "websocket", "path": "/v1/decide"}) is None


def test_what_the_lane_leaves_gets_the_routers_answers(live_server: LiveServer) -> None:
    with live_server.client() as client:
        preflight = client.options("/v1/decide", headers={"Origin": "https://news.example"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://news.example"
        assert client.put("/v1/decide").status_code == 405
        assert client.put("/v1/imp/TOKEN").status_code == 405
        assert client.get("/v1/imp/").status_code == 404
        assert client.get("/v1/imp/TOKEN/more").status_code == 404


def test_the_lane_answers_as_the_endpoints_do(live_server: LiveServer) -> None:
    with live_server.client() as client:
        unknown = client.get("/v1/decide", params={"site": "nowhere", "slots": "top"})
        forged = client.get("/v1/imp/not-a-token")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "unknown site 'nowhere'"}
    assert unknown.headers["access-control-allow-origin"] == "*"
    assert forged.status_code == 403
    assert forged.json() == {"error": "this beacon's token is not valid"}
