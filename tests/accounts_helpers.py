"""Users and signed-in browsers for the accounts tests."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import Engine, insert

from adserver.accounts.passwords import hash_password
from adserver.core.models import Advertiser, User, table

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_user(
    engine: Engine,
    email: str,
    *,
    role: str = "admin",
    advertiser: str | None = None,
    password: str | None = PASSWORD,
) -> int:
    """A user row as the service layer stores it (a lower-case e-mail, an argon2 hash)."""
    with engine.begin() as connection:
        advertiser_id = None
        if advertiser is not None:
            advertiser_id = connection.execute(
                insert(table(Advertiser)).values(name=advertiser, email=f"ads@{advertiser}.test")
            ).inserted_primary_key[0]  # type: ignore[index]
        return int(
            connection.execute(
                insert(table(User)).values(
                    email=email,
                    role=role,
                    advertiser_id=advertiser_id,
                    password_hash=hash_password(password) if password else "",
                    active=True,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        )


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def login(
    client: httpx.Client, email: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    """Open /login, then send its form as a browser would (no redirects followed)."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    data = {"email": email, "password": password, "csrf_token": csrf_of(page.text), **extra}
    return client.post("/login", data=data, follow_redirects=False)
