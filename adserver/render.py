"""Creative markup, built once per snapshot so a decision only substitutes its click URL.

Image and text creatives become inline markup (a sponsored, noopener link); an HTML creative is
passed through as written, for the tag to place in a sandboxed iframe, never in the page itself.
``%%CLICK_URL%%`` stands for the decision's click URL in all three kinds.
"""

from __future__ import annotations

from html import escape

CLICK_MACRO = "%%CLICK_URL%%"
LINK_ATTRS = f'href="{CLICK_MACRO}" target="_blank" rel="sponsored noopener"'


def asset_url(base_url: str, creative_id: int, version: int) -> str:
    return f"{base_url}/v1/asset/{creative_id}?v={version}"


def image_markup(*, image_url: str, width: int, height: int, alt: str) -> str:
    size = f' width="{width}" height="{height}"' if width and height else ""
    return (
        f'<a class="adsv-image" {LINK_ATTRS}>'
        f'<img src="{escape(image_url)}"{size} alt="{escape(alt)}"></a>'
    )


def text_markup(*, title: str, body: str, cta: str, image_url: str | None) -> str:
    image = f'<img src="{escape(image_url)}" alt="">' if image_url else ""
    return (
        f'<a class="adsv-text" {LINK_ATTRS}>{image}'
        f'<strong class="adsv-title">{escape(title)}</strong> '
        f'<span class="adsv-body">{escape(body)}</span> '
        f'<span class="adsv-cta">{escape(cta)}</span></a>'
    )


def with_click(markup: str, click_url: str) -> str:
    """The creative's markup for one decision."""
    return markup.replace(CLICK_MACRO, escape(click_url))
