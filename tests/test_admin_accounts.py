"""/admin/users and /admin/tokens: inviting a user who then sets a password through the link,
disabling one (their open session ends), and tokens whose secret is shown once and which
stop working the moment they are revoked."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine

from tests.accounts_helpers import add_user, csrf_of, login
from tests.admin_pages import AdminBrowser, admin_browser, admin_engine
from tests.conftest import LiveServer

__all__ = ["admin_browser", "admin_engine"]  # fixtures


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The pages add no SQL of their own (the service layer's tests cover PostgreSQL)."""
    return sqlite_url


def test_users_are_listed_edited_and_sent_a_password_link(
    admin_browser: AdminBrowser, admin_engine: Engine
) -> None:
    user_id = add_user(
        admin_engine, "buyer@acme.test", role="advertiser", advertiser="Acme", password=None
    )
    listing = admin_browser.get("/admin/users").text
    assert 'href="/admin/users/invite">Invite a user' in listing
    assert f'href="/admin/users/{user_id}">buyer@acme.test' in listing
    assert "invited, not set yet" in listing
    assert "ops@example.com" in admin_browser.get("/admin/users", params={"role": "admin"}).text
    assert "buyer@acme.test" not in admin_browser.get("/admin/users", params={"role": "admin"}).text
    path = f"/admin/users/{user_id}"
    refused = admin_browser.submit(
        path, {"email": "not-an-email", "role": "advertiser", "advertiser": "1", "version": "1"}
    )
    assert refused.status_code == 422
    assert "must be an e-mail address" in refused.text
    assert 'value="not-an-email"' in refused.text
    sent = admin_browser.submit(f"{path}/link", {}, page=path)
    assert sent.status_code == 200
    assert "/invite/" in sent.text  # mail is off on the test server: the link is shown


def test_disabling_a_user_ends_their_session(
    admin_browser: AdminBrowser, admin_engine: Engine, live_server: LiveServer
) -> None:
    user_id = add_user(admin_engine, "buyer@acme.test", role="advertiser", advertiser="Acme")
    with live_server.client() as buyer:
        assert login(buyer, "buyer@acme.test").status_code == 303
        assert buyer.get("/dashboard").status_code == 200
        page = admin_browser.get(f"/admin/users/{user_id}").text
        version = re.search(r'name="version" value="(\d+)"', page)
        assert version is not None
        saved = admin_browser.client.post(
            f"/admin/users/{user_id}",
            data={
                "csrf_token": csrf_of(page),
                "email": "buyer@acme.test",
                "role": "advertiser",
                "advertiser": "1",
                "version": version.group(1),
            },
        )
        assert saved.status_code == 303, saved.text
        assert buyer.get("/dashboard").status_code == 303  # back to /login


def test_a_token_is_shown_once_and_revoked(
    admin_browser: AdminBrowser, live_server: LiveServer
) -> None:
    answer = admin_browser.submit("/admin/tokens", {"name": "nightly", "advertiser": ""})
    assert answer.status_code == 200
    secret = re.search(r'<pre id="token-secret">([^<]+)</pre>', answer.text)
    assert secret is not None
    bearer = {"Authorization": f"Bearer {secret.group(1)}"}
    with live_server.client() as program:
        assert program.get("/v1/manage/sites", headers=bearer).status_code == 200
        page = admin_browser.get("/admin/tokens").text
        assert secret.group(1) not in page
        revoke = re.search(r'action="(/admin/tokens/\d+/revoke)"', page)
        assert revoke is not None
        revoked = admin_browser.submit(revoke.group(1), {"version": "1"}, page="/admin/tokens")
        assert "Token revoked" in admin_browser.follow(revoked).text
        assert program.get("/v1/manage/sites", headers=bearer).status_code == 401
    empty = admin_browser.submit("/admin/tokens", {"name": "", "advertiser": ""})
    assert empty.status_code == 422 and 'id="f-name-error"' in empty.text
