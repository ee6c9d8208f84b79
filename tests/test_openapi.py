"""/v1/openapi.json and /v1/docs: generated, complete, and true to the live server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import Engine
from starlette.routing import Route

from adserver.app import create_app
from adserver.core.models import utcnow
from adserver.services import advertisers, campaigns, sites, slots
from adserver.services.common import SYSTEM, parse
from adserver.web.api.openapi import build_document
from tests.conftest import LiveServer
from tests.factories import token

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The document does not depend on the database: SQLite only."""
    return sqlite_url


def served_routes(server: LiveServer) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every /v1 route the app serves."""
    app = create_app(server.settings)
    found = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/v1/"):
            path = route.path.replace(":int", "").replace(":path", "")
            found |= {(m, path) for m in route.methods or () if m != "HEAD"}
    return found


def fetch(server: LiveServer, path: str) -> httpx.Response:
    with server.client() as client:
        return client.get(path)


def test_every_v1_route_is_in_the_document(live_server: LiveServer) -> None:
    document = fetch(live_server, "/v1/openapi.json").json()
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    served = served_routes(live_server)
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    for needed in ("/v1/decide", "/v1/imp/{token}", "/v1/stats", "/v1/manage/users/{id}"):
        assert needed in document["paths"]


def test_the_document_has_security_schemes_and_error_shapes(live_server: LiveServer) -> None:
    document = fetch(live_server, "/v1/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": live_server.url}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    users = document["paths"]["/v1/manage/users"]
    assert users["get"]["security"] == [{"bearerAuth": []}]
    assert "password_hash" not in document["components"]["schemas"]["UserPublic"]["properties"]
    create = users["post"]
    assert create["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert "Location" in create["responses"]["201"]["headers"]
    assert document["paths"]["/v1/decide"]["get"]["security"] == [{}, {"bearerAuth": []}]
    assert document["paths"]["/v1/imp/{token}"]["post"]["security"] == []
    patch = document["paths"]["/v1/manage/users/{id}"]["patch"]
    assert "If-Match" in [p["name"] for p in patch["parameters"]]
    assert "412" in patch["responses"]


def test_the_document_is_generated_from_the_models() -> None:
    """A field added to a schema appears in the document without anyone writing it."""
    from adserver.web.api import documented

    document = build_document(documented, server_url="https://ads.example")
    schemas = document["components"]["schemas"]
    assert set(schemas["TokenCreated"]["properties"]) >= {"id", "name", "token", "active"}
    assert "token" not in schemas["TokenPublic"]["properties"]
    assert schemas["UserCreate"]["additionalProperties"] is False


@pytest.mark.browser
def test_docs_are_readable_without_any_cdn(live_server: LiveServer) -> None:
    page = fetch(live_server, "/v1/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text
    assert "https://" not in page.text and "http://cdn" not in page.text
    for text in ("POST", "/v1/manage/users", "/v1/decide", "bearer", "UserPublic"):
        assert text in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        for width in (1280, 375):
            view = browser.new_page(viewport={"width": width, "height": 900})
            view.goto(f"{live_server.url}/v1/docs#tag-users")
            assert view.title() == "API reference · adserver"
            overflow = view.evaluate("document.documentElement.scrollWidth > innerWidth + 1")
            assert not overflow, f"the page scrolls sideways at {width}px"
            view.screenshot(path=str(SCREENSHOTS / f"api-docs-{width}.png"))
            view.close()
        browser.close()


@pytest.fixture
def seeded(live_server: LiveServer, engine: Engine) -> Iterator[LiveServer]:
    """One of each entity, so that the fuzzer's reads and writes find something."""
    now = utcnow()
    with engine.begin() as connection:
        sites.create_site(
            connection,
            data=parse(sites.SiteCreate, {"key": "news", "name": "News", "domains": ["a.test"]}),
            actor=SYSTEM,
            now=now,
        )
        slot = slots.create_slot(
            connection,
            data=parse(slots.SlotCreate, {"site": "news", "name": "top", "sizes": ["728x90"]}),
            actor=SYSTEM,
            now=now,
        )
        advertiser = advertisers.create_advertiser(
            connection,
            data=parse(advertisers.AdvertiserCreate, {"name": "Acme", "email": "a@acme.test"}),
            actor=SYSTEM,
            now=now,
        )
        campaigns.create_campaign(
            connection,
            data=parse(
                campaigns.CampaignCreate,
                {"advertiser": advertiser.id, "name": "Spring", "slots": [slot.id]},
            ),
            actor=SYSTEM,
            now=now,
        )
    yield live_server


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    seeded: LiveServer, engine: Engine, tmp_path: Path
) -> None:
    """A real OpenAPI fuzzer against the live server with an admin token: every answer is
    below 500, has a documented status and content type, and matches its schema. Revoking a
    token is left out (it would revoke the fuzzer's own); tests of its own cover it."""
    bearer = token(engine, name="fuzzer")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{seeded.url}/v1/openapi.json",
        "-H", f"Authorization: Bearer {bearer}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "8",
        "--workers", "2",
        "--exclude-operation-id", "revoke_token",
        "--seed", "20261203",
        "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=220, cwd=tmp_path, env=env
    )
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert (
        "Tested: " in done.stdout and "no failures" in done.stdout.lower()
    ) or "passed" in done.stdout
