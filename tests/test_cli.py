"""The `adserver` command: what it prints, what it stores, and exit code 2 for mistakes."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from adserver.cli import main
from adserver.core.db import make_engine
from tests.conftest import SECRET
from tests.waiting import free_port, wait_healthy


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("ADSERVER_DATABASE_URL", url)
    monkeypatch.setenv("ADSERVER_SECRET_KEY", SECRET)
    return url


def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """The real console script in a child process, as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "adserver.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


def test_migrate_creates_the_schema_and_says_where_it_is(env: str) -> None:
    code, out, _ = run("migrate")
    assert code == 0
    assert out.startswith("database schema is at revision ")
    engine = make_engine(env)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM site")).scalar() == 0
    engine.dispose()


def test_serve_refuses_an_unmigrated_database(env: str) -> None:
    code, _, err = run("serve", "--port", "8123")
    assert code == 2
    assert "run `adserver migrate` first" in err


def test_serve_refuses_a_missing_secret(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADSERVER_SECRET_KEY")
    code, _, err = run("serve")
    assert code == 2
    assert "ADSERVER_SECRET_KEY is missing" in err


def test_bad_arguments_exit_2(env: str) -> None:
    assert run("serve", "--port", "99999")[0] == 2
    assert run("serve", "--workers", "lots")[0] == 2
    assert run("frobnicate")[0] == 2


def test_token_create_prints_the_token_alone_on_its_last_line(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert main(["token", "create", "reporting"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("ads_") and " " not in token
    engine = make_engine(env)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT name, token_hash, advertiser_id FROM api_token"))
        assert stored.all() == [("reporting", hashlib.sha256(token.encode()).hexdigest(), None)]
    engine.dispose()


def test_token_for_an_unknown_advertiser_is_refused(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["migrate"])
    assert main(["token", "create", "x", "--advertiser", "Nobody"]) == 2
    assert "no advertiser named 'Nobody'" in capsys.readouterr().err


def test_user_add_stores_an_argon2_hash_of_the_password(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["migrate"])
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    assert main(["user", "add", "ops@example.com", "--role", "admin", "--password-stdin"]) == 0
    assert "password:" not in capsys.readouterr().out
    engine = make_engine(env)
    with engine.connect() as connection:
        role, hashed = connection.execute(
            text("SELECT role, password_hash FROM app_user WHERE email = 'ops@example.com'")
        ).one()
    engine.dispose()
    assert role == "admin"
    assert hashed.startswith("$argon2")
    assert PasswordHasher().verify(hashed, "correct horse battery")
    assert main(["user", "add", "ops@example.com", "--role", "admin"]) == 2
    assert "exists already" in capsys.readouterr().err


def test_user_add_checks_role_and_advertiser(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["migrate"])
    assert main(["user", "add", "a@example.com", "--role", "advertiser"]) == 2
    assert "needs --advertiser" in capsys.readouterr().err
    assert main(["user", "add", "not-an-email", "--role", "admin"]) == 2
    assert "is not an e-mail address" in capsys.readouterr().err


def serve_demo(workdir: Path, port: int) -> tuple[str, int]:
    """`adserver demo` as `make run` starts it, in an empty folder with no settings at all;
    returns what it printed and its exit code once it has served the demo and been stopped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSERVER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "adserver.cli", "demo", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(process, base).status_code == 200
        article = httpx.get(f"{base}/demo/")
        assert article.status_code == 200
        assert f'src="{base}/tag.js" data-site="demo"' in article.text
        answer = httpx.get(
            f"{base}/v1/decide", params={"site": "demo", "slots": "top-of-post,below-post,ads-area"}
        ).json()
        assert all(answer["decisions"][slot] for slot in ("top-of-post", "below-post", "ads-area"))
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    return out, process.returncode


def test_demo_serves_the_article_on_the_default_database(tmp_path: Path) -> None:
    port = free_port()
    first, code = serve_demo(tmp_path, port)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught, as a service should.
    assert code == -signal.SIGTERM
    assert "Application shutdown complete." in first
    assert (tmp_path / "adserver.db").exists()  # the default ./adserver.db
    assert "(demo data added)" in first
    assert "history:  60 days of generated statistics" in first
    assert "schema:   migrated from nothing to" in first
    assert f"demo article: http://127.0.0.1:{port}/demo/" in first
    assert "login: admin@example.com / demo-admin (admin)" in first

    again, code = serve_demo(tmp_path, port)
    assert code == -signal.SIGTERM
    assert "(had data already; left as it was)" in again
    assert "schema:   up to date" in again
    assert "login: advertiser@example.com / demo-advertiser (advertiser)" in again
    engine = make_engine(f"sqlite:///{tmp_path / 'adserver.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM site")).scalar() == 1
    engine.dispose()
