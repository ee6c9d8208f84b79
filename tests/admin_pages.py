"""Signed-in browsers (httpx clients) for the /admin page tests, and form helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from adserver.core.db import make_engine
from tests.accounts_helpers import add_user, csrf_of, login
from tests.conftest import LiveServer

ADMIN_EMAIL = "ops@example.com"


@dataclass
class AdminBrowser:
    """A client signed in as an admin, posting forms as a browser would."""

    client: httpx.Client
    engine: Engine

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def submit(self, path: str, data: dict[str, Any], *, page: str | None = None) -> httpx.Response:
        """Open ``page`` (default ``path``) for its CSRF token, then post ``data`` to ``path``."""
        opened = self.client.get(page or path)
        assert opened.status_code == 200, opened.text
        return self.client.post(
            path, data={**data, "csrf_token": csrf_of(opened.text)}, follow_redirects=False
        )

    def follow(self, answer: httpx.Response) -> httpx.Response:
        """The page a successful form redirected to (303)."""
        assert answer.status_code == 303, answer.text
        return self.client.get(answer.headers["location"])


@pytest.fixture
def admin_engine(live_server: LiveServer) -> Iterator[Engine]:
    engine = make_engine(live_server.settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def admin_browser(live_server: LiveServer, admin_engine: Engine) -> Iterator[AdminBrowser]:
    add_user(admin_engine, ADMIN_EMAIL)
    with live_server.client() as client:
        assert login(client, ADMIN_EMAIL).status_code == 303
        yield AdminBrowser(client, admin_engine)


def field_error(html: str, name: str) -> str | None:
    """The error shown beside form field ``name``, or None."""
    found = re.search(rf'<p class="field-error" id="f-{re.escape(name)}-error">([^<]*)</p>', html)
    return found.group(1) if found else None


def field_value(html: str, name: str) -> str | None:
    """The value an <input> of the form shows again."""
    found = re.search(rf'<input id="f-{re.escape(name)}" name="{re.escape(name)}"[^>]*>', html)
    if not found:
        return None
    value = re.search(r'value="([^"]*)"', found.group(0))
    return value.group(1) if value else None
