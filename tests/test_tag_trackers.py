"""Third-party trackers and macros, as advertisers' agencies ask for them: impression tracker
URLs (https only) in the decision for the tag to call, and ``%%CLICK_URL_ENC%%`` and
``%%CACHEBUSTER%%`` in HTML creatives, each filled per decision."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import orjson

from adserver.delivery.render import answer_template, fill

TAG = Path(__file__).parent.parent / "adserver" / "static" / "tag.js"
BASE = "https://ads.example"


def decision(markup: str, trackers: tuple[str, ...] = ()) -> dict[str, object]:
    answer = answer_template(
        base_url=BASE,
        campaign_id=1,
        creative_id=2,
        kind="html",
        width=300,
        height=250,
        markup=markup,
        trackers=trackers,
    )
    return orjson.loads(fill(answer, b"DECISION0000001", b"TOKEN-one-decision"))  # type: ignore[no-any-return]


def test_html_macros_are_filled_for_each_decision() -> None:
    got = decision(
        '<a href="https://agency.example/c?r=%%CLICK_URL_ENC%%&cb=%%CACHEBUSTER%%">x</a>'
        '<a href="%%CLICK_URL%%">y</a>'
    )
    click = f"{BASE}/v1/click/TOKEN-one-decision"
    assert got["click_url"] == click
    html = str(got["html"])
    assert f"r={quote(click, safe='')}&cb=TOKEN-one-decision" in html
    assert f'href="{click}"' in html
    assert "%%" not in html


def test_impression_trackers_are_https_only_and_busted_per_decision() -> None:
    got = decision(
        "<p>ad</p>",
        ("https://track.example/i?cb=%%CACHEBUSTER%%", "http://insecure.example/i"),
    )
    assert got["impression_trackers"] == ["https://track.example/i?cb=TOKEN-one-decision"]
    assert "impression_trackers" not in decision("<p>ad</p>")


def test_the_tag_calls_the_trackers_when_it_counts_the_impression() -> None:
    source = TAG.read_text()
    counted = source.index("beacon(ad.impression_url)")
    assert source.index("ad.impression_trackers", counted) - counted < 80
