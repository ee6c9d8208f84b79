"""Creative markup and decision answers, built once per snapshot so a decision only splices in
its own id and token.

Image and text creatives become inline markup (a sponsored, noopener link); an HTML creative is
passed through as written, for the tag to place in a sandboxed iframe, never in the page itself.
``%%CLICK_URL%%`` stands for the decision's click URL in all three kinds; an HTML creative may
also use ``%%CLICK_URL_ENC%%`` (the same URL, percent-encoded, for a third-party click tracker's
redirect parameter) and ``%%CACHEBUSTER%%`` (a value unique to the decision, as are the creative's
impression tracker URLs' ``%%CACHEBUSTER%%``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

import orjson

CLICK_MACRO = "%%CLICK_URL%%"
CLICK_ENC_MACRO = "%%CLICK_URL_ENC%%"
CACHEBUSTER_MACRO = "%%CACHEBUSTER%%"
LINK_ATTRS = f'href="{CLICK_MACRO}" target="_blank" rel="sponsored noopener"'
#: Stand-ins for a decision's id and token while an answer is rendered ahead: random per
#: process, so no creative's text can contain them, and made of characters that neither HTML
#: nor JSON escaping changes.
_ID_MARK = "i" + secrets.token_hex(12)
_TOKEN_MARK = "t" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class Answer:
    """A creative's decision as JSON, cut where the decision's id and token go: the id comes
    first (``head`` + id), then the token between each two ``rest`` pieces."""

    head: bytes
    rest: tuple[bytes, ...]


#: The answer of a creative built without one (tests of the engine alone).
NO_ANSWER = Answer(b"", ())


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
    markup = markup.replace(CLICK_ENC_MACRO, quote(click_url, safe=""))
    return markup.replace(CLICK_MACRO, escape(click_url))


def answer_template(
    *,
    base_url: str,
    campaign_id: int,
    creative_id: int,
    kind: str,
    width: int,
    height: int,
    markup: str,
    trackers: tuple[str, ...] = (),
) -> Answer:
    """One creative's decision as the JSON /v1/decide answers, ready for ``fill``. The
    decision's token (unique to it) stands in for ``%%CACHEBUSTER%%``; impression trackers are
    listed only when there are some, and only https ones."""
    token = _TOKEN_MARK
    click_url = f"{base_url}/v1/click/{token}"
    markup = markup.replace(CACHEBUSTER_MACRO, token)
    fields: dict[str, object] = {}
    secure = [
        url.replace(CACHEBUSTER_MACRO, token) for url in trackers if url.startswith("https://")
    ]
    if secure:
        fields["impression_trackers"] = secure
    answer = orjson.dumps(
        {
            "id": _ID_MARK,
            "campaign": campaign_id,
            "creative": creative_id,
            "kind": kind,
            "width": width,
            "height": height,
            "html": with_click(markup, click_url),
            "impression_url": f"{base_url}/v1/imp/{token}",
            "view_url": f"{base_url}/v1/view/{token}",
            "click_url": click_url,
            **fields,
        }
    )
    head, after_id = answer.split(_ID_MARK.encode())
    return Answer(head, tuple(after_id.split(_TOKEN_MARK.encode())))


def fill(answer: Answer, decision_id: bytes, token: bytes) -> bytes:
    """A decision's JSON from its creative's answer: joins, no scanning; both values are
    URL-safe base64, which needs no escaping in HTML or JSON."""
    return b"".join((answer.head, decision_id, token.join(answer.rest)))
