"""`adserver user add` and `adserver token create|list|revoke` through the service layer."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from adserver.cli import main
from adserver.core.db import make_engine
from tests.conftest import SECRET


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("ADSERVER_DATABASE_URL", url)
    monkeypatch.setenv("ADSERVER_SECRET_KEY", SECRET)
    monkeypatch.setenv("ADSERVER_BASE_URL", "https://ads.example")
    assert main(["migrate"]) == 0
    return url


def test_a_user_added_without_a_password_gets_an_invitation_link(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["user", "add", "Ops@Example.com", "--role", "admin"]) == 0
    out = capsys.readouterr().out
    assert "added admin ops@example.com" in out
    link = out.strip().splitlines()[-1]
    assert link.startswith("https://ads.example/invite/")
    engine = make_engine(env)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM app_user")).scalar_one()
        history = connection.execute(text("SELECT actor_kind, action FROM change")).all()
    engine.dispose()
    assert stored == "" and history == [("system", "create")]


def test_a_short_password_on_stdin_is_refused(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["user", "add", "a@example.com", "--role", "admin", "--password-stdin"]) == 2
    assert "password" in capsys.readouterr().err


def test_tokens_are_listed_without_secrets_and_revoked_by_id(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "create", "nightly"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    assert "nightly" in listing and "admin" in listing and "active" in listing
    assert secret not in listing
    token_id = listing.splitlines()[1].split()[0]
    assert main(["token", "revoke", token_id]) == 0
    assert f"revoked token {token_id}" in capsys.readouterr().out
    assert main(["token", "list"]) == 0
    assert "revoked 20" in capsys.readouterr().out
    assert main(["token", "revoke", "999"]) == 2
    assert "no such token" in capsys.readouterr().err
