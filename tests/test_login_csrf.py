"""Every state-changing request of the pages is refused without its CSRF token, and every page
for people carries the security headers: checked over the app's whole route table, so a page
added later is covered without anyone remembering to."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

from adserver.core.db import make_engine
from tests.accounts_helpers import add_user, login
from tests.conftest import LiveServer

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def page_routes(server: LiveServer, methods: set[str]) -> list[tuple[str, str]]:
    """(method, a concrete path) for each page route (not the bearer-token /v1 API)."""
    found = []
    for route in server.app.routes:
        if not isinstance(route, Route) or route.path.startswith("/v1/"):
            continue
        path = _PARAM.sub(lambda m: "1" if m.group(2) == "int" else "x", route.path)
        found += [(method, path) for method in sorted((route.methods or set()) & methods)]
    return found


def test_no_page_accepts_a_write_without_its_csrf_token(live_server: LiveServer) -> None:
    engine = make_engine(live_server.settings.database_url)
    add_user(engine, "ops@example.com")
    engine.dispose()
    writes = page_routes(live_server, UNSAFE)
    assert ("POST", "/login") in writes and ("POST", "/admin/users/invite") in writes
    assert len(writes) > 20
    with live_server.client() as client:
        login(client, "ops@example.com")
        for method, path in writes:
            for headers in ({}, {"X-CSRF-Token": "forged"}):
                answer = client.request(
                    method, path, data={"name": "x", "csrf_token": "forged"}, headers=headers
                )
                assert answer.status_code == 403, (method, path, answer.status_code)
        assert client.get("/").headers["location"] == "/admin", "still signed in"


def test_pages_for_people_carry_the_security_headers(live_server: LiveServer) -> None:
    engine = make_engine(live_server.settings.database_url)
    add_user(engine, "ops@example.com")
    engine.dispose()
    with live_server.client() as client:
        login(client, "ops@example.com")
        for path in ("/login", "/admin", "/admin/users", "/dashboard", "/share/nothing-here"):
            answer = client.get(path)
            policy = answer.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in policy, path
            script = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
            assert "'nonce-" in script and "unsafe-inline" not in script, path
            assert answer.headers["x-content-type-options"] == "nosniff", path
            assert answer.headers["referrer-policy"] == "same-origin", path


#: What a visitor who is not signed in may open: the sign-in pages, links that carry their own
#: authorisation (an invitation, a reset, a share link), and files.
OPEN_TO_VISITORS = ("/login", "/forgot", "/invite/", "/reset/", "/share/", "/static", "/tag.js")


def test_a_visitor_reaches_only_the_sign_in_pages_and_links(live_server: LiveServer) -> None:
    reads = page_routes(live_server, {"GET"})
    assert len(reads) > 20
    with live_server.client() as visitor:
        for _, path in reads:
            answer = visitor.get(path)
            if path.startswith(OPEN_TO_VISITORS) or path in ("/healthz", "/metrics"):
                continue
            assert answer.status_code == 303, (path, answer.status_code)
            assert answer.headers["location"].startswith("/login"), path
