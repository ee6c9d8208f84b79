"""/v1/manage/creatives with real image files of each kind, and the ones refused: SVG, a
polyglot, a 20,000 x 20,000 PNG header, a truncated JPEG, a wrong size, too many bytes."""

from __future__ import annotations

import io
import struct
import time
import zlib
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import Engine

from tests.conftest import LiveServer
from tests.factories import (
    admin,
    api_client,
    b64,
    created,
    inventory_through_api,
    png,
    served,
    server_engine,
    token,
)
from tests.seed import add_hourly
from tests.waiting import wait_for

__all__ = ["admin", "server_engine"]  # fixtures


def encoded(kind: str, size: tuple[int, int] = (300, 250), **options: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "navy").save(out, kind, **options)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    """A photo-like JPEG cut off two thirds of the way through its pixel data."""
    out = io.BytesIO()
    Image.effect_noise((300, 250), 60).convert("RGB").save(out, "JPEG", quality=90)
    whole = out.getvalue()
    return whole[: len(whole) * 2 // 3]


def jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x9286] = "where I live"  # UserComment
    return encoded("JPEG", exif=exif.tobytes(), quality=85)


def animated(kind: str, frames: int = 3) -> bytes:
    images = [Image.new("RGB", (300, 250), c) for c in ("red", "green", "blue")[:frames]]
    out = io.BytesIO()
    images[0].save(
        out, kind, save_all=True, append_images=images[1:], duration=[100, 200, 300], loop=0
    )
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and header declaring a huge image, with a token of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="250">'
    b"<script>alert(1)</script></svg>"
)
POLYGLOT = encoded("GIF") + b"<script>alert(document.cookie)</script><html><body>x</body></html>"


#: Image checks do not depend on the database: those tests run on SQLite only.
IMAGES_ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def campaign(admin: httpx.Client) -> dict[str, Any]:
    return inventory_through_api(admin)


def new_creative(
    client: httpx.Client, campaign: int, image: bytes, **fields: Any
) -> httpx.Response:
    return client.post(
        "/v1/manage/creatives",
        json={
            "campaign": campaign,
            "name": "Box",
            "kind": "image",
            "width": 300,
            "height": 250,
            "click_url": "https://acme.example/",
            "image": b64(image),
            **fields,
        },
    )


@IMAGES_ON_SQLITE
@pytest.mark.parametrize(
    ("image", "media_type"),
    [
        (encoded("PNG"), "image/png"),
        (jpeg_with_exif(), "image/jpeg"),
        (encoded("GIF"), "image/gif"),
        (encoded("WEBP"), "image/webp"),
    ],
    ids=["png", "jpeg", "gif", "webp"],
)
def test_each_image_kind_is_stored_without_metadata_and_served_with_a_long_cache(
    admin: httpx.Client, live_server: LiveServer, campaign: dict[str, Any], image: bytes,
    media_type: str,
) -> None:  # fmt: skip
    creative = created(new_creative(admin, campaign["campaign"], image))
    assert "image" not in creative  # answers give the URL, never the bytes
    with live_server.client() as reader:
        served_image = reader.get(creative["image_url"])
    assert served_image.status_code == 200
    assert served_image.headers["content-type"] == media_type
    assert "max-age=31536000" in served_image.headers["cache-control"]
    assert served_image.headers["etag"]
    with live_server.client() as reader:
        again = reader.get(
            creative["image_url"], headers={"If-None-Match": served_image.headers["etag"]}
        )
    assert again.status_code == 304
    stored = Image.open(io.BytesIO(served_image.content))
    assert stored.size == (300, 250)
    assert not stored.getexif()
    assert b"SecretCam" not in served_image.content


@IMAGES_ON_SQLITE
@pytest.mark.parametrize("kind", ["GIF", "WEBP", "PNG"])
def test_an_animation_keeps_its_frames(
    admin: httpx.Client, live_server: LiveServer, campaign: dict[str, Any], kind: str
) -> None:
    creative = created(new_creative(admin, campaign["campaign"], animated(kind)))
    with live_server.client() as reader:
        stored = Image.open(io.BytesIO(reader.get(creative["image_url"]).content))
    assert getattr(stored, "n_frames", 1) == 3


@IMAGES_ON_SQLITE
@pytest.mark.parametrize(
    ("image", "why"),
    [
        (SVG, "must be a PNG, JPEG, GIF or WebP image"),
        (b"GIF89a not really", "must be a PNG, JPEG, GIF or WebP image"),
        (png_header(20_000, 20_000), "a size larger than 4000 on a side allowed"),
        (png_header(4001, 10), "is 4001x10: a size larger than 4000 on a side allowed"),
        (truncated_jpeg(), "cannot be decoded (truncated or damaged)"),
        (encoded("PNG", (728, 90)), "is 728x90 pixels, not the declared 300x250"),
        (b"\x89PNG" + bytes(310 * 1024), "more than the 307200 allowed"),
    ],
    ids=["svg", "garbage", "huge-header", "wide-header", "truncated-jpeg", "wrong-size", "too-big"],
)
def test_bad_images_are_refused_with_a_422_naming_the_image(
    admin: httpx.Client, campaign: dict[str, Any], image: bytes, why: str
) -> None:
    response = new_creative(admin, campaign["campaign"], image)
    assert response.status_code == 422, response.text
    assert why in response.json()["fields"]["image"]


def test_a_polyglot_is_stored_as_the_image_alone(
    admin: httpx.Client, live_server: LiveServer, campaign: dict[str, Any]
) -> None:
    creative = created(new_creative(admin, campaign["campaign"], POLYGLOT))
    with live_server.client() as reader:
        stored = reader.get(creative["image_url"])
    assert b"<script>" not in stored.content and b"<html>" not in stored.content
    assert stored.headers["x-content-type-options"] == "nosniff"


def test_a_multipart_upload_and_the_kinds_rules(
    admin: httpx.Client, live_server: LiveServer, campaign: dict[str, Any]
) -> None:
    form = {
        "campaign": str(campaign["campaign"]),
        "name": "Uploaded",
        "width": "728",
        "height": "90",
        "click_url": "https://acme.example/up",
        "impression_trackers": ["https://t.example/a", "https://t.example/b"],
    }
    response = admin.post(
        "/v1/manage/creatives", data=form, files={"image": ("b.png", png(728, 90), "image/png")}
    )
    creative = created(response)
    assert creative["impression_trackers"] == ["https://t.example/a", "https://t.example/b"]
    url = f"/v1/manage/creatives/{creative['id']}"
    resized = admin.patch(url, json={"width": 300, "height": 250})
    assert resized.status_code == 422
    assert "upload one of the new size" in resized.json()["fields"]["width"]
    fits = admin.patch(url, json={"width": 300, "height": 250, "image": b64(encoded("PNG"))})
    assert fits.status_code == 200, fits.text
    assert fits.json()["image_url"] != creative["image_url"] or fits.json()["version"] == 2
    assert admin.patch(url, json={"kind": "html", "campaign": 1}).json()["fields"] == {
        "kind": "cannot change after creation",
        "campaign": "cannot change after creation",
    }

    base = {"campaign": campaign["campaign"], "name": "x", "click_url": "https://a.example/"}
    no_html = admin.post("/v1/manage/creatives", json={**base, "kind": "html"})
    assert no_html.json()["fields"] == {"html": "an HTML creative needs its HTML"}
    markup = '<a href="%%CLICK_URL%%"><b>Hello</b></a><script>1</script>'
    html = created(
        admin.post("/v1/manage/creatives", json={**base, "kind": "html", "html": markup})
    )
    assert html["html"] == markup  # stored as written; shown only in the sandboxed iframe
    no_title = admin.post("/v1/manage/creatives", json={**base, "kind": "text"})
    assert no_title.json()["fields"] == {"title": "a text creative needs a title"}
    text = created(
        admin.post(
            "/v1/manage/creatives",
            json={**base, "kind": "text", "title": "Hi", "body": "More", "cta": "Go",
                  "image": b64(png(64, 64))},
        )
    )  # fmt: skip
    assert text["image_url"]
    bad = admin.post(
        "/v1/manage/creatives",
        json={
            **base,
            "click_url": "javascript:alert(1)",
            "impression_trackers": ["http://x.example"],
        },
    )
    assert set(bad.json()["fields"]) == {"click_url", "impression_trackers.0"}


def test_an_advertisers_creative_waits_for_review(
    admin: httpx.Client, live_server: LiveServer, server_engine: Engine, campaign: dict[str, Any]
) -> None:
    wait_for(lambda: served(live_server), "the campaign to serve", seconds=2)
    bearer = token(server_engine, name="acme", advertiser_id=campaign["advertiser"])
    with api_client(live_server, bearer) as client:
        mine = created(new_creative(client, campaign["campaign"], encoded("PNG", (728, 90)),
                                    width=728, height=90))  # fmt: skip
        assert mine["status"] == "pending"
        approve = client.patch(f"/v1/manage/creatives/{mine['id']}", json={"status": "active"})
        assert approve.json()["fields"] == {"status": "only the publisher sets this"}
        other = inventory_through_api(admin, site="blog")
        foreign = new_creative(client, other["campaign"], encoded("PNG"))
        assert foreign.json()["fields"] == {"campaign": "no such campaign"}
    # Pending creatives never serve; once the publisher approves, it can.
    admin.patch(f"/v1/manage/creatives/{campaign['creative']}", json={"status": "paused"})
    wait_for(lambda: served(live_server) is None, "only a pending creative left", seconds=2)
    admin.patch(f"/v1/manage/creatives/{mine['id']}", json={"status": "active"})
    chosen = wait_for(lambda: served(live_server), "the approved creative to serve", seconds=2)
    assert chosen["creative"] == mine["id"]


def test_creatives_are_read_listed_and_archived_or_deleted(
    admin: httpx.Client, server_engine: Engine, campaign: dict[str, Any]
) -> None:
    other = inventory_through_api(admin, site="blog")
    url = f"/v1/manage/creatives/{campaign['creative']}"
    read = admin.get(url)
    assert read.status_code == 200 and read.headers["etag"] == '"v1"'
    assert read.json()["campaign"] == campaign["campaign"]
    spare = created(new_creative(admin, campaign["campaign"], encoded("PNG")))

    def ids(**params: Any) -> list[int]:
        return [c["id"] for c in admin.get("/v1/manage/creatives", params=params).json()]

    assert ids(campaign=campaign["campaign"]) == [campaign["creative"], spare["id"]]
    assert ids(advertiser=other["advertiser"]) == [other["creative"]]
    admin.patch(f"/v1/manage/creatives/{spare['id']}", json={"status": "paused"})
    assert ids(status="paused") == [spare["id"]]

    hour = int(time.time()) // 3600 * 3600
    with server_engine.begin() as connection:
        add_hourly(
            connection,
            [{"hour": hour, "site_id": 1, "slot_id": campaign["slot"],
              "campaign_id": campaign["campaign"], "creative_id": campaign["creative"],
              "impressions": 2}],
        )  # fmt: skip
    assert admin.delete(url).json()["outcome"] == "archived"
    assert admin.get(url).json()["status"] == "archived"
    removed = admin.delete(f"/v1/manage/creatives/{spare['id']}").json()
    assert removed == {"entity": "creative", "id": str(spare["id"]), "outcome": "deleted"}
    assert admin.get(f"/v1/manage/creatives/{spare['id']}").status_code == 404
