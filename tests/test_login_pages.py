"""/login, /logout and /: signing in through the pages of a live server."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adserver.config import Settings
from adserver.core.db import make_engine
from adserver.web.pages.auth import require_user
from tests.accounts_helpers import PASSWORD, add_user, csrf_of, login
from tests.conftest import LiveServer, start_server


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Page behaviour on SQLite; the session and throttle SQL run on both in test_sessions."""
    return sqlite_url


@pytest.fixture
def users(live_server: LiveServer) -> LiveServer:
    engine = make_engine(live_server.settings.database_url)
    add_user(engine, "ops@example.com")
    add_user(engine, "buyer@acme.test", role="advertiser", advertiser="Acme")
    engine.dispose()
    return live_server


def test_a_visitor_is_sent_to_login_and_a_user_to_their_home(users: LiveServer) -> None:
    with users.client() as client:
        assert client.get("/").headers["location"] == "/login"
        answer = login(client, "ops@example.com")
        assert answer.status_code == 303 and answer.headers["location"] == "/admin"
        assert client.get("/").headers["location"] == "/admin"
        assert client.get("/login").headers["location"] == "/admin"
    with users.client() as client:
        assert login(client, "Buyer@Acme.test").headers["location"] == "/dashboard"
        assert client.get("/").headers["location"] == "/dashboard"


def test_the_session_cookie_is_httponly_lax_and_new_at_each_login(users: LiveServer) -> None:
    with users.client() as client:
        client.cookies.set("adserver_session", "planted-by-someone-else", domain="127.0.0.1")
        answer = login(client, "ops@example.com")
        set_cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=lax" in set_cookie
        assert "secure" not in set_cookie  # the test server's address is http
        first = client.cookies["adserver_session"]
        assert first != "planted-by-someone-else"
        # Signing in again while signed in (a form left open in another tab) replaces it too.
        token = csrf_of(client.get("/logout").text)
        data = {"email": "ops@example.com", "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=data).status_code == 303
        second = client.cookies["adserver_session"]
        assert second != first
    with users.client(cookies={"adserver_session": first}) as old:
        assert old.get("/").headers["location"] == "/login", "the replaced session still works"


def test_wrong_email_and_wrong_password_look_the_same(users: LiveServer) -> None:
    with users.client() as client:
        wrong_password = login(client, "ops@example.com", "not the password")
        wrong_email = login(client, "nobody@example.com", PASSWORD)
    assert wrong_password.status_code == wrong_email.status_code == 401
    assert "Wrong e-mail address or password." in wrong_password.text
    assert "Wrong e-mail address or password." in wrong_email.text
    assert "adserver_session" not in wrong_password.headers.get("set-cookie", "")
    assert 'value="ops@example.com"' in wrong_password.text, "the e-mail typed is kept"


def test_the_sixth_wrong_password_in_a_minute_is_refused_whatever_the_password(
    users: LiveServer,
) -> None:
    with users.client() as client:
        for _ in range(5):
            assert login(client, "ops@example.com", "guess").status_code == 401
        refused = login(client, "ops@example.com", PASSWORD)
        assert refused.status_code == 429
        assert "Too many wrong passwords" in refused.text
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert "adserver_session" not in client.cookies


def test_forms_without_the_csrf_token_are_refused(users: LiveServer) -> None:
    with users.client() as client:
        client.get("/login")
        for data in ({}, {"csrf_token": "forged"}):
            answer = client.post("/login", data={"email": "ops@example.com", **data})
            assert answer.status_code == 403
            assert "another site" in answer.text
            assert "<title>" in answer.text
        assert login(client, "ops@example.com").status_code == 303
        # A signed-in browser's token is bound to its session: the pre-login one no longer fits.
        assert client.post("/logout", data={}).status_code == 403
        token = csrf_of(client.get("/logout").text)
        assert client.post("/logout", headers={"X-CSRF-Token": token}).status_code == 303


def test_a_token_from_another_browser_does_not_fit(users: LiveServer) -> None:
    with users.client() as attacker, users.client() as victim:
        token = csrf_of(attacker.get("/login").text)
        victim.get("/login")
        data = {"email": "ops@example.com", "password": PASSWORD, "csrf_token": token}
        assert victim.post("/login", data=data).status_code == 403


def test_logout_ends_the_session_on_the_server(users: LiveServer) -> None:
    with users.client() as client:
        login(client, "ops@example.com")
        key = client.cookies["adserver_session"]
        token = csrf_of(client.get("/logout").text)
        answer = client.post("/logout", data={"csrf_token": token})
        assert answer.headers["location"] == "/login"
        assert "adserver_session" not in client.cookies
    with users.client(cookies={"adserver_session": key}) as replay:
        assert replay.get("/").headers["location"] == "/login"


def test_next_returns_to_the_page_asked_for_and_never_to_another_site(users: LiveServer) -> None:
    with users.client() as client:
        assert login(client, "ops@example.com", next="/admin/campaigns?page=2").headers[
            "location"
        ] == ("/admin/campaigns?page=2")
    with users.client() as client:
        assert login(client, "ops@example.com", next="//evil.example/").headers["location"] == (
            "/admin"
        )


def test_pages_carry_security_headers_and_the_slot_frame_does_not(users: LiveServer) -> None:
    with users.client() as client:
        page = client.get("/login")
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert "<script" not in page.text
        frame = client.get("/v1/slot/nosuch/top.html")
        assert "content-security-policy" not in frame.headers
        assert "x-frame-options" not in frame.headers


def test_require_user_redirects_visitors_and_refuses_other_roles(users: LiveServer) -> None:
    async def admin_only(request: Request) -> Response:
        user = await require_user(request, role="admin")
        return PlainTextResponse(f"hello {user.email}")

    users.app.router.routes.append(Route("/probe", admin_only, methods=["GET"]))
    with users.client() as client:
        answer = client.get("/probe?x=1")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=/probe%3Fx%3D1"
        login(client, "ops@example.com", next="/probe?x=1")
        assert client.get("/probe").text == "hello ops@example.com"
    with users.client() as client:
        login(client, "buyer@acme.test")
        assert client.get("/probe").status_code == 403


def test_a_disabled_user_is_signed_out_at_once(users: LiveServer) -> None:
    with users.client() as client:
        login(client, "ops@example.com")
        assert client.get("/").headers["location"] == "/admin"
        engine = make_engine(users.settings.database_url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE app_user SET active = false"))
        engine.dispose()
        assert client.get("/").headers["location"] == "/login"


def test_the_session_cookie_is_secure_behind_https(
    server_settings: tuple[Settings, socket.socket], tmp_path: Path
) -> None:
    settings, sock = server_settings
    port = sock.getsockname()[1]
    server = start_server(settings.with_changes(base_url="https://ads.example"), sock)
    try:
        engine = make_engine(settings.database_url)
        add_user(engine, "ops@example.com")
        engine.dispose()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            page = client.get("/login")
            assert "; secure" in page.headers["set-cookie"].lower()
            # The client keeps Secure cookies for https only: send the pre-login key by hand.
            key = page.headers["set-cookie"].split(";")[0]
            data = {"email": "ops@example.com", "password": PASSWORD}
            answer = client.post(
                "/login",
                data={**data, "csrf_token": csrf_of(page.text)},
                headers={"Cookie": key},
            )
            assert answer.status_code == 303
            assert "; secure" in answer.headers["set-cookie"].lower()
    finally:
        server.stop()
