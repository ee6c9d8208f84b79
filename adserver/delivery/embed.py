"""The copy-ready tag for one slot, reserving by width what the tag will show there.

A phone must not reserve what a desktop shows: a 728x90-or-300x250 slot on a 375 px page gets a
300x250 (the only size that fits), so it reserves 250 px there and 250 px wherever 300x250
fits, and a 728x90-only slot is scaled to the page's width, so it reserves that aspect ratio.
The tag picks sizes by the same rule (the sizes no wider than the slot's box, or the narrowest
scaled down when none fits), so the reservation is what arrives. Container queries measure the
slot's own box, not the window: a sidebar on a wide screen is as narrow as a phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

#: A text ad in a slot scaled below its narrowest size: one line, so it fits a banner's height.
SCALED_TEXT = (
    "{slot} .adsv-text{{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;"
    "padding:4px 8px}}{slot} .adsv-text img,{slot} .adsv-body{{display:none}}"
    "{slot} .adsv-title{{display:inline}}{slot} .adsv-text::before{{float:none;margin:0 6px 0 0}}"
)


@dataclass(frozen=True, slots=True)
class CopyReadyTag:
    """Text to show and copy (escape it when placing it in a page)."""

    #: Pasted once per page.
    script: str
    #: Pasted where the ad goes: a style reserving space by width, and the slot.
    slot: str
    #: For pages that cannot run script: a frame of the slot's own page.
    iframe: str


def fixed_sizes(sizes: list[str]) -> list[tuple[int, int]]:
    """The ``WxH`` sizes as numbers (``fluid`` has no size of its own)."""
    fixed = []
    for size in sizes:
        width, _, height = size.partition("x")
        if width.isdigit() and height.isdigit() and int(width) and int(height):
            fixed.append((int(width), int(height)))
    return fixed


def reservations(sizes: list[str]) -> list[tuple[int | None, str]]:
    """CSS declarations by the slot's width: (the widest width they apply below, or None for
    any width) with the declarations, widest first, as the rules must come in CSS."""
    fixed = fixed_sizes(sizes)
    if not fixed:
        return []
    widths = sorted({width for width, _ in fixed})
    rules: list[tuple[int | None, str]] = []
    for bound, width in zip([None, *reversed(widths[1:])], reversed(widths), strict=True):
        tallest = max(h for w, h in fixed if w <= width)
        rules.append((bound, f"min-height:{tallest}px"))
    narrowest = widths[0]
    height = max(h for w, h in fixed if w == narrowest)
    rules.append((narrowest, f"min-height:0;aspect-ratio:{narrowest}/{height}"))
    return rules


def copy_ready_tag(
    *, base_url: str, site_key: str, slot_name: str, sizes: list[str]
) -> CopyReadyTag:
    """The script, the slot (reserving by width) and the iframe alternative for one slot."""
    site = escape(site_key)
    slot = escape(slot_name)
    script = f'<script async src="{base_url}/tag.js" data-site="{site}"></script>'
    selector = f'ins[data-ad-slot="{slot}"]'
    css = [f"{selector}{{display:block}}"]
    rules = reservations(sizes)
    for bound, declarations in rules:
        rule = f"{selector}{{{declarations}}}"
        if bound is not None and bound == rules[-1][0]:
            # Scaled down: a text ad there shows its title and call to action on one line.
            rule += SCALED_TEXT.format(slot=selector)
        css.append(rule if bound is None else f"@container (max-width:{bound - 0.02}px){{{rule}}}")
    listed = escape(",".join(sizes))
    slot_tag = (
        f"<style>{''.join(css)}</style>\n"
        '<div style="container-type:inline-size">'
        f'<ins data-ad-slot="{slot}" data-ad-sizes="{listed}"></ins></div>'
    )
    fixed = fixed_sizes(sizes)
    if fixed:
        width, height = max(fixed, key=lambda size: size[0] * size[1])
        frame_size = (
            f'width="{width}" height="{height}" '
            f'style="border:0;width:100%;max-width:{width}px;height:auto;'
            f'aspect-ratio:{width}/{height}"'
        )
    else:
        frame_size = 'width="100%" height="250" style="border:0"'
    iframe = (
        f'<iframe src="{base_url}/v1/slot/{site}/{slot}.html" {frame_size} '
        'scrolling="no" title="Advertisement" loading="lazy"></iframe>'
    )
    return CopyReadyTag(script, slot_tag, iframe)
