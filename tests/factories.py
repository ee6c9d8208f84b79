"""Typed factories for tests: each creates one entity through the service layer (the same
functions the API, the pages and the CLI call) and returns its public form; plus clients of
the management API with admin and advertiser tokens."""

from __future__ import annotations

import base64
import io
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


def png(width: int, height: int, colour: str = "red") -> bytes:
    """A real PNG of that size."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def inventory_through_api(
    client: httpx.Client, *, site: str = "news", tier: str = "standard"
) -> dict[str, Any]:
    """A site (serving on 127.0.0.1), a 728x90 slot, an advertiser, an active campaign on the
    slot and an image creative, all made through the management API; their ids."""
    created(
        client.post(
            "/v1/manage/sites", json={"key": site, "name": site.title(), "domains": ["127.0.0.1"]}
        )
    )
    slot = created(
        client.post("/v1/manage/slots", json={"site": site, "name": "top", "sizes": ["728x90"]})
    )
    advertiser = created(client.post("/v1/manage/advertisers", json={"name": f"Acme {site}"}))
    campaign = created(
        client.post(
            "/v1/manage/campaigns",
            json={
                "advertiser": advertiser["id"],
                "name": "Launch",
                "status": "active",
                "tier": tier,
                "price": "2.50",
                "starts_at": "2020-01-01T00:00:00",
                "slots": [slot["id"]],
            },
        )
    )
    creative = created(
        client.post(
            "/v1/manage/creatives",
            json={
                "campaign": campaign["id"],
                "name": "Banner",
                "kind": "image",
                "width": 728,
                "height": 90,
                "click_url": "https://acme.example/launch",
                "image": b64(png(728, 90)),
            },
        )
    )
    return {
        "site": site,
        "slot": slot["id"],
        "advertiser": advertiser["id"],
        "campaign": campaign["id"],
        "creative": creative["id"],
    }


def served(server: LiveServer, site: str = "news", slot: str = "top") -> Any:
    """What the running server decides for one slot now (None: no ad, or a site it does not
    know yet)."""
    with server.client() as reader:
        answer = reader.get("/v1/decide", params={"site": site, "slots": slot})
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    return answer.json()["decisions"][slot]
