"""Specification of decision answers rendered ahead, ``adserver.render``."""

from __future__ import annotations

import orjson

from adserver.delivery import render

ID = b"AAAAAAAAAAAAAAAA"
TOKEN = b"AhChYnmbA-DIkS1MGgAAAAEAAAAB_w=="


def answer(markup: str, base_url: str = "https://ads.example") -> dict[str, object]:
    template = render.answer_template(
        base_url=base_url,
        campaign_id=7,
        creative_id=11,
        kind="html",
        width=300,
        height=250,
        markup=markup,
    )
    return orjson.loads(render.fill(template, ID, TOKEN))  # type: ignore[no-any-return]


def test_a_filled_answer_carries_the_decision_id_and_token_in_every_url() -> None:
    click = f"https://ads.example/v1/click/{TOKEN.decode()}"
    assert answer('<a href="%%CLICK_URL%%">Go</a>') == {
        "id": ID.decode(),
        "campaign": 7,
        "creative": 11,
        "kind": "html",
        "width": 300,
        "height": 250,
        "html": f'<a href="{click}">Go</a>',
        "impression_url": f"https://ads.example/v1/imp/{TOKEN.decode()}",
        "view_url": f"https://ads.example/v1/view/{TOKEN.decode()}",
        "click_url": click,
    }


def test_every_click_macro_in_the_markup_is_filled() -> None:
    html = answer("<a href='%%CLICK_URL%%'>one</a><a href='%%CLICK_URL%%'>two</a>")["html"]
    assert isinstance(html, str)
    assert html.count(f"/v1/click/{TOKEN.decode()}") == 2
    assert "%%CLICK_URL%%" not in html


def test_the_click_url_is_html_escaped_in_markup_only() -> None:
    filled = answer('<a href="%%CLICK_URL%%">Go</a>', base_url="https://ads.example/a&b")
    assert (
        filled["html"] == f'<a href="https://ads.example/a&amp;b/v1/click/{TOKEN.decode()}">Go</a>'
    )
    assert filled["click_url"] == f"https://ads.example/a&b/v1/click/{TOKEN.decode()}"


def test_markup_with_quotes_and_newlines_stays_valid_json() -> None:
    markup = '<div title="a \\"b\\"">\n\t<script>x = "</script>"</script></div>'
    assert answer(markup)["html"] == markup


def test_text_that_looks_like_the_fields_is_left_alone() -> None:
    markup = "100% of %(id)s and %(token)s and %s, %% kept"
    assert answer(markup)["html"] == markup
