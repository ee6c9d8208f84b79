"""Typed factories for tests: each creates one entity through the service layer (the same
functions the API, the pages and the CLI call) and returns its public form; plus clients of
the management API with admin and advertiser tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from adserver.core.db import make_engine
from adserver.services.tokens import create_api_token
from tests.conftest import LiveServer


def token(engine: Engine, *, name: str = "admin", advertiser_id: int | None = None) -> str:
    with engine.begin() as connection:
        return create_api_token(connection, name=name, advertiser_id=advertiser_id)


def api_client(server: LiveServer, bearer: str) -> httpx.Client:
    client = server.client()
    client.headers["Authorization"] = f"Bearer {bearer}"
    return client


@pytest.fixture
def server_engine(live_server: LiveServer) -> Iterator[Engine]:
    """An engine on the live server's database, for setting up what the API cannot."""
    engine = make_engine(live_server.settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def admin(live_server: LiveServer, server_engine: Engine) -> Iterator[httpx.Client]:
    """A management API client with an admin token."""
    with api_client(live_server, token(server_engine)) as client:
        yield client


def created(response: httpx.Response) -> dict[str, Any]:
    """The object a POST created (asserting it did)."""
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
