"""UTM tagging: a campaign with ``utm`` sends readers to its landing URL with utm_source (the
site), utm_medium (display), utm_campaign and utm_content (the creative) added at redirect,
unless the advertiser set them."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlmodel import Session

from adserver.core.db import make_engine, migrate
from adserver.delivery.inventory import build_snapshot
from adserver.delivery.utm import tagged
from tests.seed import add_campaign, add_creative, add_site, add_slot, publish


def test_missing_parameters_are_added_and_present_ones_kept() -> None:
    url = tagged(
        "https://shop.example/bikes?ref=news&utm_source=theirs",
        source="demo",
        campaign="Spring launch",
        content="Banner A",
    )
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "ref": ["news"],
        "utm_source": ["theirs"],
        "utm_medium": ["display"],
        "utm_campaign": ["Spring launch"],
        "utm_content": ["Banner A"],
    }
    assert tagged("https://a.example/", source="s", campaign="c", content="x").startswith(
        "https://a.example/?utm_source=s&utm_medium=display"
    )


def test_the_snapshot_carries_the_tagged_landing_url_of_utm_campaigns_only(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'utm.db'}"
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        site = add_site(session, key="millbrook")
        top = add_slot(session, site, "top", ["728x90"])
        tagged_campaign = add_campaign(session, [top], name="Launch", utm=True)
        plain_campaign = add_campaign(session, [top], advertiser="Other", name="Plain")
        tagged_creative = add_creative(session, tagged_campaign, name="Leaderboard")
        plain_creative = add_creative(session, plain_campaign)
        ids = (tagged_creative.id, plain_creative.id)
        publish(session)
    with engine.connect() as connection:
        snapshot = build_snapshot(connection, base_url="https://ads.example", now=time.time())
    engine.dispose()
    landing = snapshot.creatives[ids[0]].click_url
    assert parse_qs(urlsplit(landing).query) == {
        "utm_source": ["millbrook"],
        "utm_medium": ["display"],
        "utm_campaign": ["Launch"],
        "utm_content": ["Leaderboard"],
    }
    assert snapshot.creatives[ids[1]].click_url == "https://advertiser.example/landing"
