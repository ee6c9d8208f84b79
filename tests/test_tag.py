"""The tag's size budget and the copy-ready tag that reserves space by the slot's width."""

from __future__ import annotations

import gzip
from pathlib import Path

from adserver.delivery.embed import copy_ready_tag, fixed_sizes, reservations

TAG = Path(__file__).parent.parent / "adserver" / "static" / "tag.js"
BASE = "https://ads.example"


def test_the_tag_stays_under_four_and_a_half_kilobytes_gzipped() -> None:
    assert len(gzip.compress(TAG.read_bytes(), 9)) < 4608


def test_a_slot_of_two_sizes_reserves_what_fits_at_each_width() -> None:
    # 728 px and wider: both fit, 250 px; 300 to 727: only 300x250, 250 px; below 300: the
    # 300x250 scaled down, so its aspect ratio.
    assert reservations(["728x90", "300x250"]) == [
        (None, "min-height:250px"),
        (728, "min-height:250px"),
        (300, "min-height:0;aspect-ratio:300/250"),
    ]


def test_a_leaderboard_alone_is_scaled_to_a_narrow_slot() -> None:
    assert reservations(["728x90"]) == [
        (None, "min-height:90px"),
        (728, "min-height:0;aspect-ratio:728/90"),
    ]


def test_a_slot_of_three_widths_reserves_the_tallest_that_fits() -> None:
    assert reservations(["970x250", "728x90", "320x50"]) == [
        (None, "min-height:250px"),
        (970, "min-height:90px"),
        (728, "min-height:50px"),
        (320, "min-height:0;aspect-ratio:320/50"),
    ]


def test_fluid_alone_reserves_nothing() -> None:
    assert reservations(["fluid"]) == []
    assert fixed_sizes(["fluid", "300x250", "0x0", "bad"]) == [(300, 250)]


def test_the_copy_ready_tag_has_the_script_a_sized_slot_and_an_iframe() -> None:
    tag = copy_ready_tag(
        base_url=BASE, site_key="demo", slot_name="below-post", sizes=["728x90", "300x250"]
    )
    assert tag.script == f'<script async src="{BASE}/tag.js" data-site="demo"></script>'
    assert 'data-ad-slot="below-post" data-ad-sizes="728x90,300x250"' in tag.slot
    assert 'ins[data-ad-slot="below-post"]{display:block}' in tag.slot
    assert "@container (max-width:299.98px)" in tag.slot
    assert "container-type:inline-size" in tag.slot
    assert tag.slot.index("<style>") < tag.slot.index("<ins")
    assert f'src="{BASE}/v1/slot/demo/below-post.html"' in tag.iframe
    assert "aspect-ratio:300/250" in tag.iframe or "aspect-ratio:728/90" in tag.iframe


def test_names_are_escaped() -> None:
    tag = copy_ready_tag(base_url=BASE, site_key='a"b', slot_name="<x>", sizes=["300x250"])
    assert "<x>" not in tag.slot and '"b' not in tag.script
