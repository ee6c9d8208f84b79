"""Invitations, "forgot password", resets and password changes, through the pages."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from adserver.accounts import links
from adserver.core.db import make_engine
from adserver.core.models import utcnow
from tests.accounts_helpers import PASSWORD, add_user, csrf_of, login
from tests.conftest import LiveServer, bound_socket, make_settings, start_server
from tests.smtp_server import SmtpServer, smtp_server

NEW = "a brand new passphrase"


@pytest.fixture
def mail(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path, security="plain") as server:
        yield server


def _server(url: str, tmp_path: Path, smtp: SmtpServer | None) -> Iterator[LiveServer]:
    sock: socket.socket = bound_socket()
    settings = make_settings(url, sock.getsockname()[1], tmp_path / "spool")
    if smtp is not None:
        settings = settings.with_changes(smtp_url=smtp.url(login=False))
    server = start_server(settings, sock)
    yield server
    server.stop()
    sock.close()


@pytest.fixture
def quiet(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server with mail off."""
    yield from _server(sqlite_url, tmp_path, None)


@pytest.fixture
def mailing(sqlite_url: str, tmp_path: Path, mail: SmtpServer) -> Iterator[LiveServer]:
    """A server that sends mail to the test's SMTP server."""
    yield from _server(sqlite_url, tmp_path, mail)


@pytest.fixture
def engine_of(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def post_form(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    """Open the page at ``path`` and send its form, with its CSRF token."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path, data={**data, "csrf_token": csrf_of(page.text)})


def invite(client: httpx.Client, email: str, advertiser: str = "") -> httpx.Response:
    role = "advertiser" if advertiser else "admin"
    data = {"email": email, "role": role, "advertiser": advertiser}
    return post_form(client, "/admin/users/invite", data)


def link_in(html: str, purpose: str) -> str:
    found = re.search(rf"http://127\.0\.0\.1:\d+(/{purpose}/[A-Za-z0-9_-]+)", html)
    assert found, html
    return found.group(1)


def test_an_invitation_shown_to_the_admin_sets_a_password_once(
    quiet: LiveServer, engine_of: Engine
) -> None:
    add_user(engine_of, "ops@x.test")
    with engine_of.begin() as connection:
        connection.execute(
            text("INSERT INTO advertiser (name, email, status, created_at, updated_at, version) "
                 "VALUES ('Acme', 'a@acme.test', 'active', '2026-01-01', '2026-01-01', 1)")
        )  # fmt: skip
    with quiet.client() as admin:
        login(admin, "ops@x.test")
        refused = post_form(
            admin, "/admin/users/invite", {"email": "buyer@acme.test", "role": "advertiser"}
        )
        assert refused.status_code == 422
        assert "an advertiser user needs an advertiser" in refused.text
        assert 'value="buyer@acme.test"' in refused.text, "what was typed is kept"
        shown = invite(admin, "buyer@acme.test", advertiser="1")
        assert shown.status_code == 200 and "Not mailed" in shown.text
        path = link_in(shown.text, "invite")
    with quiet.client() as invitee:
        page = invitee.get(path)
        assert page.status_code == 200 and "buyer@acme.test" in page.text
        token = csrf_of(page.text)
        weak = invitee.post(
            path, data={"password": "short", "confirm": "short", "csrf_token": token}
        )
        assert weak.status_code == 422 and "at least 8 characters" in weak.text
        differ = invitee.post(
            path, data={"password": NEW, "confirm": NEW + "x", "csrf_token": token}
        )
        assert differ.status_code == 422 and "the two passwords differ" in differ.text
        done = invitee.post(path, data={"password": NEW, "confirm": NEW, "csrf_token": token})
        assert done.status_code == 303 and done.headers["location"] == "/dashboard"
        assert invitee.get("/").headers["location"] == "/dashboard", "signed in"
    with quiet.client() as again:
        assert again.get(path).status_code == 404, "the link works once"
        assert login(again, "buyer@acme.test", NEW).headers["location"] == "/dashboard"


def test_an_invitation_is_mailed_when_mail_is_on(
    mailing: LiveServer, mail: SmtpServer, engine_of: Engine
) -> None:
    add_user(engine_of, "ops@x.test")
    with mailing.client() as admin:
        login(admin, "ops@x.test")
        answer = invite(admin, "second@x.test")
        assert "was mailed to second@x.test" in answer.text
        assert "/invite/" not in answer.text, "the admin does not see a mailed link"
    (message,) = mail.recorder.messages
    assert message["To"] == "second@x.test"
    body = message.get_content()
    assert "works once, for 7 days" in body
    path = link_in(body, "invite")
    with mailing.client() as invitee:
        assert post_form(invitee, path, {"password": NEW, "confirm": NEW}).status_code == 303


def test_forgot_password_tells_nobody_which_addresses_exist(
    mailing: LiveServer, mail: SmtpServer, engine_of: Engine
) -> None:
    add_user(engine_of, "ops@x.test")
    with mailing.client() as old_session:
        login(old_session, "ops@x.test")
        with mailing.client() as visitor:
            unknown = post_form(visitor, "/forgot", {"email": "nobody@x.test"})
            known = post_form(visitor, "/forgot", {"email": "OPS@x.test"})
            assert unknown.status_code == known.status_code == 200
            strip = re.compile(r"(nobody|OPS)@x\.test|csrf_token\" value=\"[^\"]+")
            assert strip.sub("", unknown.text) == strip.sub("", known.text)
            assert "/reset/" not in known.text
            # A second request within a minute mails nothing more.
            post_form(visitor, "/forgot", {"email": "ops@x.test"})
        (message,) = mail.recorder.messages
        assert message["To"] == "ops@x.test"
        path = link_in(message.get_content(), "reset")
        with mailing.client() as owner:
            assert post_form(owner, path, {"password": NEW, "confirm": NEW}).status_code == 303
        assert old_session.get("/").headers["location"] == "/login", "other sessions end"
    with mailing.client() as client:
        assert login(client, "ops@x.test", PASSWORD).status_code == 401
        assert login(client, "ops@x.test", NEW).status_code == 303


def test_changing_a_password_needs_the_current_one_and_ends_other_sessions(
    quiet: LiveServer, engine_of: Engine
) -> None:
    add_user(engine_of, "ops@x.test")
    with quiet.client() as other, quiet.client() as here:
        login(other, "ops@x.test")
        login(here, "ops@x.test")
        wrong = post_form(
            here,
            "/account/password",
            {"current_password": "not it at all", "password": NEW, "confirm": NEW},
        )
        assert wrong.status_code == 422 and "is not your current password" in wrong.text
        done = post_form(
            here,
            "/account/password",
            {"current_password": PASSWORD, "password": NEW, "confirm": NEW},
        )
        assert done.status_code == 303
        assert here.get("/").headers["location"] == "/admin", "this browser stays signed in"
        assert other.get("/").headers["location"] == "/login"


def test_a_visitor_cannot_invite_and_an_advertiser_is_refused(
    quiet: LiveServer, engine_of: Engine
) -> None:
    add_user(engine_of, "buyer@acme.test", role="advertiser", advertiser="Acme")
    with quiet.client() as visitor:
        assert visitor.get("/admin/users/invite").status_code == 303
        assert visitor.get("/account/password").status_code == 303
    with quiet.client() as buyer:
        login(buyer, "buyer@acme.test")
        assert buyer.get("/admin/users/invite").status_code == 403


def test_links_expire_and_a_newer_one_replaces_the_older(engine_of: Engine) -> None:
    user_id = add_user(engine_of, "ops@x.test", password=None)
    now = utcnow()
    with engine_of.begin() as connection:
        first = links.issue_link(connection, user_id=user_id, purpose="reset", now=now)
        second = links.issue_link(connection, user_id=user_id, purpose="reset", now=now)
        assert links.link_user(connection, token=first, purpose="reset", now=now) is None
        assert links.link_user(connection, token=second, purpose="invite", now=now) is None
        late = now + timedelta(hours=1, seconds=1)
        assert links.link_user(connection, token=second, purpose="reset", now=late) is None
        assert links.redeem_link(connection, token=second, purpose="reset", now=now) == user_id
        assert links.redeem_link(connection, token=second, purpose="reset", now=now) is None
