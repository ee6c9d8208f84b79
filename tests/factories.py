"""Typed factories for tests: each creates one entity through the service layer (the same
functions the API, the pages and the CLI call) and returns its public form; plus clients of
the management API with admin and advertiser tokens."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import Connection, Engine

from adserver.core.db import make_engine
from adserver.services import advertisers, campaigns, creatives, sites, slots
from adserver.services.advertisers import AdvertiserCreate, AdvertiserPublic
from adserver.services.campaigns import CampaignCreate, CampaignPublic
from adserver.services.common import SYSTEM
from adserver.services.creatives import CreativeCreate, CreativePublic
from adserver.services.sites import SiteCreate, SitePublic
from adserver.services.slots import SlotCreate, SlotPublic
from adserver.services.tokens import create_api_token
from tests.conftest import LiveServer
from tests.waiting import wait_for


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
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def inventory_through_api(
    client: httpx.Client,
    *,
    site: str = "news",
    tier: str = "standard",
    servers: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A site (serving on 127.0.0.1), a 728x90 slot, an advertiser, an active campaign on the
    slot and an image creative, all made through the management API; their ids. With
    ``servers`` (base URLs), the campaign is made once each of them knows the slot, so that what
    a test times from then on is the campaign's way to serving."""
    created(
        client.post(
            "/v1/manage/sites", json={"key": site, "name": site.title(), "domains": ["127.0.0.1"]}
        )
    )
    slot = created(
        client.post("/v1/manage/slots", json={"site": site, "name": "top", "sizes": ["728x90"]})
    )
    advertiser = created(client.post("/v1/manage/advertisers", json={"name": f"Acme {site}"}))
    for url in servers:
        wait_for(partial(slot_known, url, site, "top"), f"{url} to know the slot", seconds=30)
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


def slot_known(url: str, site: str, slot: str) -> bool:
    answer = httpx.get(f"{url}/v1/decide", params={"site": site, "slots": slot}, timeout=5)
    return answer.status_code == 200 and "errors" not in answer.json()


def served(server: LiveServer, site: str = "news", slot: str = "top") -> Any:
    """What the running server decides for one slot now (None: no ad, or a site it does not
    know yet)."""
    with server.client() as reader:
        answer = reader.get("/v1/decide", params={"site": site, "slots": slot})
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    return answer.json()["decisions"][slot]


# Factories on a connection, through the service layer (the caller owns the transaction).

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def make_site(connection: Connection, **overrides: Any) -> SitePublic:
    fields = {"key": "news", "name": "News", "domains": ["localhost", "127.0.0.1"], **overrides}
    return sites.create_site(
        connection, data=SiteCreate.model_validate(fields), actor=SYSTEM, now=NOW
    )


def make_slot(connection: Connection, **overrides: Any) -> SlotPublic:
    fields = {"site": "news", "name": "top", "sizes": ["728x90"], **overrides}
    return slots.create_slot(
        connection, data=SlotCreate.model_validate(fields), actor=SYSTEM, now=NOW
    )


def make_advertiser(connection: Connection, **overrides: Any) -> AdvertiserPublic:
    fields = {"name": "Acme", "email": "ads@acme.example", **overrides}
    return advertisers.create_advertiser(
        connection, data=AdvertiserCreate.model_validate(fields), actor=SYSTEM, now=NOW
    )


def make_campaign(connection: Connection, **overrides: Any) -> CampaignPublic:
    """An active campaign starting in the past; ``advertiser`` defaults to a new one."""
    if "advertiser" not in overrides:
        overrides["advertiser"] = make_advertiser(connection).id
    fields = {"name": "Launch", "status": "active", "starts_at": "2020-01-01T00:00:00"}
    return campaigns.create_campaign(
        connection,
        data=CampaignCreate.model_validate({**fields, **overrides}),
        actor=SYSTEM,
        now=NOW,
    )


def make_creative(connection: Connection, *, campaign: int, **overrides: Any) -> CreativePublic:
    """A 728x90 image creative unless ``overrides`` say otherwise."""
    fields: dict[str, Any] = {
        "campaign": campaign,
        "name": "Banner",
        "kind": "image",
        "width": 728,
        "height": 90,
        "click_url": "https://acme.example/launch",
        **overrides,
    }
    if fields["kind"] == "image" and "image" not in fields:
        fields["image"] = b64(png(fields["width"], fields["height"]))
    return creatives.create_creative(
        connection, data=CreativeCreate.model_validate(fields), actor=SYSTEM, now=NOW
    )
