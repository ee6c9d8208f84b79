"""The demo: its data (added once, to an empty database only), its pages and the tag's size.

Data tests run on a real, migrated database (a SQLite file, then PostgreSQL); the page tests
run over a real server, where the demo article's three slots must all fill.
"""

from __future__ import annotations

import gzip
import io
import random
import re
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from PIL import Image
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session, SQLModel

from adserver.config import Settings
from adserver.core.db import inventory_version
from adserver.core.models import Advertiser, Campaign, CampaignSlot, Creative, Site, Slot, User
from adserver.core.resources import PACKAGE_DIR
from adserver.delivery.decide import DecideRequest, SlotRequest, Snapshot, decide
from adserver.delivery.inventory import build_snapshot
from adserver.demo import data as demo
from tests.conftest import LiveServer, bound_socket, make_settings, start_server

BASE_URL = "http://127.0.0.1:8123"
SLOT_NAMES = ("top-of-post", "below-post", "ads-area")
TAG = PACKAGE_DIR / "static" / "tag.js"
#: Real argon2 with cheap parameters: the default costs half a second a hash on a CI machine.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def add_demo_data(
    engine: Engine, base_url: str = BASE_URL, *, now: datetime | None = None
) -> demo.DemoInfo | None:
    return demo.add_demo_data(engine, base_url=base_url, now=now, hasher=FAST_HASHER)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in SQLModel.metadata.tables.items()
        }


def snapshot(engine: Engine, now: float) -> Snapshot:
    with engine.connect() as connection:
        return build_snapshot(connection, base_url=BASE_URL, now=now)


def decide_all(snap: Snapshot, now: float, seed: int, **context: object) -> dict[str, object]:
    request = DecideRequest(
        site="demo",
        slots=tuple(SlotRequest(name) for name in SLOT_NAMES),
        now=now,
        path="/demo/",
        **context,  # type: ignore[arg-type]
    )
    return dict(decide(snap, request, random.Random(seed)).decisions)


def test_adds_a_site_with_three_slots_and_three_advertisers(engine: Engine) -> None:
    info = add_demo_data(engine, BASE_URL + "/")
    assert info is not None
    assert info.site_key == "demo"
    assert info.page_url == f"{BASE_URL}/demo/"
    with Session(engine) as session:
        site = session.scalars(select(Site)).one()
        assert (site.key, site.timezone, site.currency) == ("demo", "Europe/London", "USD")
        assert set(site.domains) == {"localhost", "127.0.0.1"}
        slots = {s.name: s.sizes for s in session.scalars(select(Slot))}
        assert slots == {
            "top-of-post": ["728x90"],
            "below-post": ["728x90", "300x250"],
            "ads-area": ["300x250"],
        }
        assert len(session.scalars(select(Advertiser)).all()) == 3
        campaigns = session.scalars(select(Campaign)).all()
        assert {c.tier for c in campaigns} == {"sponsorship", "standard", "house"}
        assert {c.status for c in campaigns} == {"active"}
        kinds = {c.kind for c in session.scalars(select(Creative))}
        assert kinds == {"image", "text", "html"}
        for creative in session.scalars(select(Creative)):
            assert creative.click_url.startswith(f"{BASE_URL}/demo/landing?ad=")
            assert creative.click_url.rsplit("=", 1)[1] in demo.ADVERTISERS


def test_every_slot_fills_and_every_creative_kind_shows(engine: Engine) -> None:
    add_demo_data(engine)
    now = time.time()
    snap = snapshot(engine, now)
    seen: dict[str, set[str]] = {name: set() for name in SLOT_NAMES}
    for seed in range(60):
        decisions = decide_all(snap, now, seed)
        for name in SLOT_NAMES:
            decision = decisions[name]
            assert decision is not None, f"{name} did not fill"
            seen[name].add(decision.creative.kind)  # type: ignore[attr-defined]
    assert seen["top-of-post"] == {"image"}
    assert seen["below-post"] == {"image", "text"}
    assert seen["ads-area"] == {"html"}


def test_top_of_post_falls_back_once_the_sponsors_cap_is_reached(engine: Engine) -> None:
    add_demo_data(engine)
    now = time.time()
    snap = snapshot(engine, now)
    (sponsorship,) = snap.sites["demo"].slots["top-of-post"].tiers[0]
    assert sponsorship.tier == "sponsorship" and sponsorship.fc_count == 3
    sponsor = sponsorship.id
    first = decide_all(snap, now, 1)["top-of-post"]
    assert first.campaign.id == sponsor  # type: ignore[attr-defined]
    capped = decide_all(snap, now, 1, frequency={sponsor: [now - 60, now - 30, now - 10]})
    fallback = capped["top-of-post"]
    assert fallback is not None
    assert fallback.campaign.tier == "standard"  # type: ignore[attr-defined]


def test_campaigns_started_yesterday_in_the_sites_time_zone(engine: Engine) -> None:
    now = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 July in London
    add_demo_data(engine, now=now)
    with Session(engine) as session:
        starts = {c.starts_at for c in session.scalars(select(Campaign))}
    assert starts == {datetime(2026, 7, 1, 0, 0)}


def test_images_are_pngs_of_their_declared_size(engine: Engine) -> None:
    add_demo_data(engine)
    with Session(engine) as session:
        images = session.scalars(select(Creative).where(Creative.kind == "image")).all()
    assert {(c.width, c.height) for c in images} == {(728, 90), (300, 250)}
    for creative in images:
        assert creative.image is not None and creative.image_type == "image/png"
        with Image.open(io.BytesIO(creative.image)) as image:
            image.verify()
            assert image.format == "PNG"
            assert image.size == (creative.width, creative.height)


def test_logins_work_with_argon2_and_the_advertiser_user_sees_one_advertiser(
    engine: Engine,
) -> None:
    info = add_demo_data(engine)
    assert info is not None
    assert {(x.role, x.email, x.password) for x in info.logins} == {
        ("admin", "admin@example.com", "demo-admin"),
        ("advertiser", "advertiser@example.com", "demo-advertiser"),
    }
    hasher = PasswordHasher()
    with Session(engine) as session:
        for login in info.logins:
            user = session.scalars(select(User).where(User.email == login.email)).one()
            assert user.role == login.role
            assert user.password_hash.startswith("$argon2")
            assert hasher.verify(user.password_hash, login.password)
        advertiser_user = session.scalars(select(User).where(User.role == "advertiser")).one()
        admin = session.scalars(select(User).where(User.role == "admin")).one()
        assert advertiser_user.advertiser_id is not None and admin.advertiser_id is None
        # The advertiser user's advertiser is one whose campaign actually delivers.
        assigned = session.scalars(
            select(Campaign.id).where(Campaign.advertiser_id == advertiser_user.advertiser_id)
        ).all()
        assert assigned
        assert session.scalars(
            select(CampaignSlot).where(CampaignSlot.campaign_id.in_(assigned))  # type: ignore[attr-defined]
        ).first()


def test_second_call_returns_none_and_changes_nothing(engine: Engine) -> None:
    assert add_demo_data(engine) is not None
    before = counts(engine)
    with engine.connect() as connection:
        version = inventory_version(connection)
    assert add_demo_data(engine, "http://elsewhere.example") is None
    assert counts(engine) == before
    with engine.connect() as connection:
        assert inventory_version(connection) == version
        urls = connection.execute(text("SELECT DISTINCT click_url FROM creative")).scalars()
        assert all(u.startswith(BASE_URL) for u in urls)


def test_a_database_with_any_site_gets_nothing(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Site(key="mine", name="Mine", domains=["mine.example"]))
        session.commit()
    before = counts(engine)
    assert add_demo_data(engine) is None
    assert counts(engine) == before


def test_an_existing_user_is_left_alone_and_not_listed(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(User(email="admin@example.com", role="admin", password_hash="kept"))
        session.commit()
    info = add_demo_data(engine)
    assert info is not None
    assert [x.email for x in info.logins] == ["advertiser@example.com"]
    with Session(engine) as session:
        kept = session.scalars(select(User).where(User.email == "admin@example.com")).one()
        assert kept.password_hash == "kept"


# -- the pages, over a real server -------------------------------------------------------------


@pytest.fixture
def server_settings(
    server_settings: tuple[Settings, socket.socket],
) -> tuple[Settings, socket.socket]:
    """As ``adserver demo`` serves: with the demo pages mounted."""
    settings, sock = server_settings
    return settings.with_changes(demo=True), sock


@pytest.fixture
def demo_server(engine: Engine, live_server: LiveServer) -> LiveServer:
    add_demo_data(engine, live_server.url)
    live_server.runtime.inventory.rebuild()
    return live_server


def test_adserver_serve_mounts_no_demo_pages(
    engine: Engine, tmp_path: Path, database_url: str
) -> None:
    """Only ``adserver demo`` mounts the demo article; a publisher's server answers 404."""
    sock = bound_socket()
    server = start_server(make_settings(database_url, sock.getsockname()[1], tmp_path), sock)
    try:
        with server.client() as client:
            assert client.get("/demo/").status_code == 404
            assert client.get("/demo/landing").status_code == 404
            assert client.get("/healthz").status_code == 200
    finally:
        server.stop()
        sock.close()


def test_article_carries_the_tag_once_and_the_three_slots(demo_server: LiveServer) -> None:
    with demo_server.client() as client:
        page = client.get("/demo/")
        redirect = client.get("/demo")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.count("<script") == 1
    assert f'<script async src="{demo_server.url}/tag.js" data-site="demo"></script>' in html
    for name, height in (("top-of-post", 90), ("below-post", 250), ("ads-area", 250)):
        ins = f'<ins data-ad-slot="{name}" style="display:block;min-height:{height}px"></ins>'
        assert html.count(ins) == 1, name
    assert (
        html.index('"top-of-post"') < html.index('class="post-body"') < html.index('"below-post"')
    )
    assert redirect.status_code == 308
    assert redirect.headers["location"] == "/demo/"


def test_the_tags_one_request_fills_all_three_slots(demo_server: LiveServer) -> None:
    origin = "http://localhost:" + demo_server.url.rsplit(":", 1)[1]
    body = (
        '{"site": "demo", "url": "' + origin + '/demo/", "slots": '
        '[{"name": "top-of-post"}, {"name": "below-post"}, {"name": "ads-area"}]}'
    )
    with demo_server.client() as client:
        answer = client.post(
            "/v1/decide",
            content=body,
            headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": origin},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == origin
    decisions = answer.json()["decisions"]
    assert all(decisions[name] is not None for name in SLOT_NAMES), decisions
    assert decisions["ads-area"]["kind"] == "html"


def test_landing_page_names_only_known_advertisers(demo_server: LiveServer) -> None:
    with demo_server.client() as client:
        known = client.get("/demo/landing", params={"ad": "copper-kettle"})
        unknown = client.get("/demo/landing", params={"ad": "<script>alert(1)</script>"})
    assert known.status_code == 200
    assert "You followed an ad for The Copper Kettle Tearoom" in known.text
    assert unknown.status_code == 200
    assert "You followed an ad</h1>" in unknown.text
    assert "alert(1)" not in unknown.text


# -- the tag ------------------------------------------------------------------------------------


def test_tag_is_small_plain_script() -> None:
    source = TAG.read_bytes()
    assert len(gzip.compress(source, 9)) < 4608  # 4.5 KB
    text_ = source.decode()
    assert not re.search(r"^\s*(import|export)\b", text_, re.MULTILINE)
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: syntax not checked")
    subprocess.run([node, "--check", str(TAG)], check=True, capture_output=True)
