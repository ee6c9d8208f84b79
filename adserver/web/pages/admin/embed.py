"""The copy-ready tag a publisher pastes for one slot: the script once per page, the slot's
``<ins>`` with its tallest size reserved (so the page does not move when the ad arrives), and
the ``<iframe>`` alternative for pages that cannot run script."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True, slots=True)
class EmbedTags:
    script: str
    slot: str
    iframe: str


def _fixed(sizes: list[str]) -> list[tuple[int, int]]:
    fixed = []
    for size in sizes:
        width, _, height = size.partition("x")
        if width.isdigit() and height.isdigit():
            fixed.append((int(width), int(height)))
    return fixed


def embed_tags(base_url: str, site_key: str, slot_name: str, sizes: list[str]) -> EmbedTags:
    """The three snippets, as text to show and copy (escape them when placing them in HTML)."""
    site = escape(site_key)
    slot = escape(slot_name)
    fixed = _fixed(sizes)
    script = f'<script async src="{base_url}/tag.js" data-site="{site}"></script>'
    if fixed:
        tallest = max(height for _, height in fixed)
        ins = f'<ins data-ad-slot="{slot}" style="display:block;min-height:{tallest}px"></ins>'
        width, height = max(fixed, key=lambda size: size[0] * size[1])
        frame_size = f'width="{width}" height="{height}"'
    else:
        ins = f'<ins data-ad-slot="{slot}"></ins>'
        frame_size = 'width="100%" height="250"'
    iframe = (
        f'<iframe src="{base_url}/v1/slot/{site}/{slot}.html" {frame_size} '
        'style="border:0;max-width:100%" scrolling="no" title="Advertisement" '
        'loading="lazy"></iframe>'
    )
    return EmbedTags(script, ins, iframe)
