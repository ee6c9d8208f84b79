"""Bearer tokens and principals: who a token stands for and what it may see."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from adserver.accounts.principal import Forbidden, Principal, bearer_token
from adserver.cli import main
from adserver.services.tokens import create_api_token, hash_token, principal_for_token
from tests.conftest import SECRET
from tests.seed import add_campaign, add_site, add_slot


def cli_token(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    name: str,
    advertiser: str | None = None,
) -> str:
    """A token made the way an operator makes one: `adserver token create`."""
    monkeypatch.setenv("ADSERVER_DATABASE_URL", database_url)
    monkeypatch.setenv("ADSERVER_SECRET_KEY", SECRET)
    args = ["token", "create", name] + (["--advertiser", advertiser] if advertiser else [])
    assert main(args) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer ads_abc", "ads_abc"),
        ("bearer   ads_abc  ", "ads_abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
    ],
)
def test_bearer_token_is_read_from_the_authorization_header(header: str, token: str | None) -> None:
    assert bearer_token({"authorization": header} if header else {}) == token


def test_an_admin_may_read_any_advertiser_or_all() -> None:
    admin = Principal("ops")
    assert admin.is_admin and admin.sees_delivery_counts
    assert admin.advertiser_scope(None) is None
    assert admin.advertiser_scope(7) == 7


def test_an_advertiser_is_held_to_its_own_figures() -> None:
    acme = Principal("acme-reporting", advertiser_id=3)
    assert not acme.is_admin and not acme.sees_delivery_counts
    assert acme.advertiser_scope(None) == 3
    assert acme.advertiser_scope(3) == 3
    with pytest.raises(Forbidden, match="only its own advertiser"):
        acme.advertiser_scope(4)


def test_cli_tokens_map_to_their_principals(
    engine: Engine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Session(engine) as session:
        slot = add_slot(session, add_site(session), "top", ["728x90"])
        campaign = add_campaign(session, [slot], advertiser="Acme")
        session.commit()
        acme_id = campaign.advertiser_id
    admin = cli_token(monkeypatch, capsys, database_url, "ops")
    acme = cli_token(monkeypatch, capsys, database_url, "acme", advertiser="Acme")
    with engine.connect() as connection:
        assert principal_for_token(connection, admin) == Principal("ops", None, token_id=1)
        assert principal_for_token(connection, acme) == Principal("acme", acme_id, token_id=2)
        assert principal_for_token(connection, "ads_not-a-token") is None
        assert principal_for_token(connection, admin + "x") is None
        stored = connection.execute(text("SELECT token_hash FROM api_token")).scalars().all()
    assert sorted(stored) == sorted([hash_token(admin), hash_token(acme)])
    assert admin not in stored and acme not in stored


def test_created_tokens_are_distinct_and_stored_hashed(engine: Engine) -> None:
    with engine.begin() as connection:
        first = create_api_token(connection, name="a", advertiser_id=None)
        second = create_api_token(connection, name="b", advertiser_id=None)
    assert first != second and first.startswith("ads_")
    with engine.connect() as connection:
        assert principal_for_token(connection, first) == Principal("a", token_id=1)
        assert principal_for_token(connection, second) == Principal("b", token_id=2)
