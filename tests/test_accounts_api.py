"""/v1/manage/users and /v1/manage/tokens over a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from adserver.core.db import make_engine
from adserver.core.models import utcnow
from adserver.services.common import SYSTEM
from adserver.services.users import set_password
from tests.accounts_helpers import PASSWORD, add_user, login
from tests.conftest import LiveServer
from tests.factories import admin, api_client, created, server_engine
from tests.processes import AdserverProcess, adserver_env

__all__ = ["admin", "server_engine"]  # fixtures

STATS = "/v1/stats?from=2026-12-01&to=2026-12-01"


def advertiser_id(engine: Engine, name: str = "Acme") -> int:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO advertiser (name, email, status, created_at, updated_at, version) "
                "VALUES (:n, 'a@b.test', 'active', '2026-01-01', '2026-01-01', 1)"
            ),
            {"n": name},
        )
        return int(connection.execute(text("SELECT max(id) FROM advertiser")).scalar_one())


def test_users_are_created_without_a_password_and_never_show_a_hash(
    admin: httpx.Client,
    server_engine: Engine,
) -> None:
    acme = advertiser_id(server_engine)
    user = created(
        admin.post(
            "/v1/manage/users",
            json={"email": "Buyer@Acme.test", "role": "advertiser", "advertiser": acme},
        )
    )
    assert user["email"] == "buyer@acme.test" and user["has_password"] is False
    assert user["advertiser"] == acme and user["active"] is True
    assert "password_hash" not in user and "password" not in user
    got = admin.get(f"/v1/manage/users/{user['id']}")
    assert got.json() == user and got.headers["etag"] == '"v1"'
    listed = admin.get("/v1/manage/users", params={"role": "advertiser"}).json()
    assert [u["id"] for u in listed] == [user["id"]]
    for answer in (got.text, admin.get("/v1/manage/users").text):
        assert "argon2" not in answer and "hash" not in answer.replace("has_password", "")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"email": "not-an-address", "role": "admin"}, {"email"}),
        ({"email": "a@b.test", "role": "owner"}, {"role"}),
        ({"email": "a@b.test", "role": "advertiser"}, {"advertiser"}),
        ({"email": "a@b.test", "role": "admin", "password": "hunter22hunter"}, {"password"}),
        ({"email": "a@b.test", "role": "admin", "password_hash": "x"}, {"password_hash"}),
        ({"email": "a@b.test", "role": "admin", "colour": "red"}, {"colour"}),
        ({"email": "a@b.test", "role": "advertiser", "advertiser": 999}, {"advertiser"}),
    ],
)
def test_bad_users_are_refused_naming_each_field(
    admin: httpx.Client,
    body: dict[str, object],
    fields: set[str],
) -> None:
    answer = admin.post("/v1/manage/users", json=body)
    assert answer.status_code == 422, answer.text
    assert set(answer.json()["fields"]) == fields


def test_a_duplicate_email_is_a_conflict(admin: httpx.Client) -> None:
    created(admin.post("/v1/manage/users", json={"email": "ops@x.test", "role": "admin"}))
    again = admin.post("/v1/manage/users", json={"email": "OPS@x.test", "role": "admin"})
    assert again.status_code == 409 and "email" in again.json()["fields"]


def test_disabling_a_user_ends_its_sessions_and_if_match_guards_edits(
    live_server: LiveServer,
    admin: httpx.Client,
    server_engine: Engine,
) -> None:
    user_id = add_user(server_engine, "ops@x.test")
    with live_server.client() as browser:
        login(browser, "ops@x.test")
        assert browser.get("/").headers["location"] == "/admin"
        version = admin.get(f"/v1/manage/users/{user_id}").headers["etag"]
        done = admin.patch(
            f"/v1/manage/users/{user_id}", json={"active": False}, headers={"If-Match": version}
        )
        assert done.status_code == 200 and done.json()["active"] is False
        stale = admin.patch(
            f"/v1/manage/users/{user_id}", json={"active": True}, headers={"If-Match": version}
        )
        assert stale.status_code == 412
        assert browser.get("/").headers["location"] == "/login"
        assert login(browser, "ops@x.test").status_code == 401


def test_deleting_a_user_deletes_it_or_disables_one_the_history_names(
    live_server: LiveServer,
    admin: httpx.Client,
    server_engine: Engine,
) -> None:
    quiet = created(admin.post("/v1/manage/users", json={"email": "q@x.test", "role": "admin"}))
    removal = admin.delete(f"/v1/manage/users/{quiet['id']}").json()
    assert removal == {"entity": "user", "id": str(quiet["id"]), "outcome": "deleted"}
    assert admin.get(f"/v1/manage/users/{quiet['id']}").status_code == 404
    acted = add_user(server_engine, "acted@x.test")
    with server_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO change (at, actor_kind, actor_id, actor_name, entity, entity_id, "
                "action) VALUES ('2026-01-01', 'user', :id, 'acted@x.test', 'site', 'news', "
                "'create')"
            ),
            {"id": acted},
        )
    removal = admin.delete(f"/v1/manage/users/{acted}").json()
    assert removal["outcome"] == "disabled"
    assert admin.get(f"/v1/manage/users/{acted}").json()["active"] is False
    history = admin.get("/v1/manage/changes", params={"entity": "user", "id": str(acted)})
    assert history.json()[-1]["action"] == "archive"
    assert history.json()[-1]["after"] == {"active": False}


def test_tokens_show_their_secret_once_and_revocation_holds_at_once(
    live_server: LiveServer,
    admin: httpx.Client,
    server_engine: Engine,
) -> None:
    acme = advertiser_id(server_engine)
    made = created(admin.post("/v1/manage/tokens", json={"name": "reporting", "advertiser": acme}))
    secret = made["token"]
    assert secret.startswith("ads_") and made["active"] is True and made["last_used_at"] is None
    assert "token" not in admin.get(f"/v1/manage/tokens/{made['id']}").json()
    assert all("token" not in t for t in admin.get("/v1/manage/tokens").json())
    with server_engine.connect() as connection:
        stored = connection.execute(text("SELECT token_hash FROM api_token")).scalars().all()
    assert secret not in stored
    with api_client(live_server, secret) as scoped:
        assert scoped.get(STATS).status_code == 200
        # An advertiser token manages nothing.
        assert scoped.get("/v1/manage/tokens").status_code == 403
        used = admin.get(f"/v1/manage/tokens/{made['id']}").json()
        assert used["last_used_at"] is not None
        scoped.get(STATS)
        again = admin.get(f"/v1/manage/tokens/{made['id']}").json()
        assert again["last_used_at"] == used["last_used_at"], "recorded at most once a minute"
        revoked = admin.delete(f"/v1/manage/tokens/{made['id']}")
        assert revoked.json() == {"entity": "token", "id": str(made["id"]), "outcome": "revoked"}
        assert scoped.get(STATS).status_code == 401
    after = admin.get(f"/v1/manage/tokens/{made['id']}").json()
    assert after["active"] is False and after["revoked_at"] is not None
    assert [t["id"] for t in admin.get("/v1/manage/tokens?status=revoked").json()] == [made["id"]]
    changes = admin.get("/v1/manage/changes", params={"entity": "token", "id": str(made["id"])})
    assert [c["action"] for c in changes.json()] == ["create", "archive"]
    assert changes.json()[0]["actor"]["kind"] == "token"


def test_a_refused_write_still_records_the_tokens_use(
    live_server: LiveServer, admin: httpx.Client
) -> None:
    """A token's check and the write it admits share one transaction: undoing the refused
    write must not undo the record of the token's use."""
    made = created(admin.post("/v1/manage/tokens", json={"name": "script"}))
    with api_client(live_server, made["token"]) as caller:
        refused = caller.patch(f"/v1/manage/tokens/{made['id']}", json={"advertiser": 1})
    assert refused.status_code == 422 and "advertiser" in refused.json()["fields"]
    after = admin.get(f"/v1/manage/tokens/{made['id']}")
    assert after.json()["last_used_at"] is not None
    assert after.headers["etag"] == '"v1"' and after.json()["name"] == "script"


def test_tokens_cannot_change_advertiser(admin: httpx.Client, server_engine: Engine) -> None:
    made = created(admin.post("/v1/manage/tokens", json={"name": "a"}))
    answer = admin.patch(f"/v1/manage/tokens/{made['id']}", json={"advertiser": 1})
    assert answer.status_code == 422 and "advertiser" in answer.json()["fields"]
    renamed = admin.patch(f"/v1/manage/tokens/{made['id']}", json={"name": "b"})
    assert renamed.json()["name"] == "b" and renamed.headers["etag"] == '"v2"'


@pytest.mark.slow
def test_a_revoked_token_fails_in_a_second_server_process(
    live_server: LiveServer,
    admin: httpx.Client,
    tmp_path: Path,
) -> None:
    made = created(admin.post("/v1/manage/tokens", json={"name": "script"}))
    settings = live_server.settings
    env = adserver_env(settings.database_url, "http://127.0.0.1", tmp_path / "spool2")
    other = AdserverProcess(["serve", "--port", "{port}"], env, tmp_path / "other.log").start()
    try:
        with api_client_at(other.url, made["token"]) as client:
            assert client.get("/v1/manage/users").status_code == 200
            assert admin.delete(f"/v1/manage/tokens/{made['id']}").status_code == 200
            refused = client.get("/v1/manage/users")
            assert refused.status_code == 401 and "not valid" in refused.json()["error"]
    finally:
        other.stop()


def api_client_at(url: str, bearer: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {bearer}"})


def test_a_user_with_a_password_can_sign_in_after_the_api_made_it(
    live_server: LiveServer,
    admin: httpx.Client,
) -> None:
    user = created(admin.post("/v1/manage/users", json={"email": "new@x.test", "role": "admin"}))
    with live_server.client() as browser:
        assert login(browser, "new@x.test", PASSWORD).status_code == 401
    engine = make_engine(live_server.settings.database_url)
    with engine.begin() as connection:
        set_password(connection, user_id=user["id"], password=PASSWORD, actor=SYSTEM, now=utcnow())
    engine.dispose()
    with live_server.client() as browser:
        assert login(browser, "new@x.test", PASSWORD).status_code == 303
    assert admin.get(f"/v1/manage/users/{user['id']}").json()["has_password"] is True
