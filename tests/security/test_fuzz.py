"""hypothesis against the serving routes over HTTP: whatever a client sends to decide, the
beacons, the click and the slot frame, the answer is one of the documented ones, never a 5xx.
(The management API gets the same from schemathesis, driven by its OpenAPI document.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adserver.core.db import make_engine
from tests.conftest import LiveServer, bound_socket, make_settings, start_server
from tests.seed import three_slot_site

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: What decide may answer: its decisions, a bad request, an unknown site, a foreign origin, and
#: the guard's limits.
DECIDE_ANSWERS = {200, 400, 403, 404, 413, 414, 431}
EVENT_ANSWERS = {204, 200, 302, 400, 403, 404, 410, 413, 414, 431}
#: What a header can carry: visible latin-1 bytes (no surrounding spaces, which HTTP strips).
header_text = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_categories=("Cc",)),
    max_size=300,
).map(lambda text: text.encode("latin-1"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
decide_fields = st.fixed_dictionaries(
    {},
    optional={
        "site": st.sampled_from(["news", "", "NEWS", "news\x00", "ne/ws"]) | st.text(max_size=20),
        "slots": st.sampled_from(["top", "top,side", '[{"name":"top","sizes":["728x90"]}]', "["])
        | st.text(max_size=60)
        | json_values,
        "url": st.text(max_size=200) | json_values,
        "keywords": st.text(max_size=60) | json_values,
        "fc": st.sampled_from(['{"1":[1,2]}', "{", '{"x":"y"}', '{"99999999999999999999":[1e308]}'])
        | json_values,
        "shown": st.text(max_size=30) | json_values,
        "explain": st.sampled_from(["1", "0", "yes"]),
    },
)


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    sock = bound_socket()
    live = start_server(make_settings(sqlite_url, sock.getsockname()[1], tmp_path / "s"), sock)
    engine = make_engine(sqlite_url)
    three_slot_site(engine)
    engine.dispose()
    live.runtime.inventory.rebuild()
    yield live
    live.stop()
    sock.close()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def as_query(fields: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}


@FUZZ
@given(fields=decide_fields, origin=st.none() | header_text, agent=header_text)
def test_decide_by_query_never_fails(
    client: httpx.Client, fields: dict[str, Any], origin: bytes | None, agent: bytes
) -> None:
    headers = {"User-Agent": agent, **({"Origin": origin} if origin is not None else {})}
    answer = client.get("/v1/decide", params=as_query(fields), headers=headers)
    assert answer.status_code in DECIDE_ANSWERS, answer.text
    assert answer.headers["content-type"] == "application/json"


@FUZZ
@given(
    body=st.one_of(
        decide_fields.map(json.dumps),
        json_values.map(json.dumps),
        st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    )
)
def test_decide_by_body_never_fails(client: httpx.Client, body: str) -> None:
    answer = client.post("/v1/decide", content=body.encode("utf-8", "surrogatepass"))
    assert answer.status_code in DECIDE_ANSWERS, answer.text


@FUZZ
@given(
    kind=st.sampled_from(["imp", "view", "click"]),
    token=st.text(min_size=1, max_size=80).filter(
        lambda t: "/" not in t and "?" not in t and "#" not in t
    ),
    method=st.sampled_from(["GET", "POST", "HEAD"]),
    query=st.dictionaries(st.sampled_from(["img", "url", "x"]), st.text(max_size=20), max_size=2),
)
def test_events_never_fail(
    client: httpx.Client, kind: str, token: str, method: str, query: dict[str, str]
) -> None:
    if kind == "click" and method == "POST":
        method = "GET"
    answer = client.request(method, f"/v1/{kind}/{quote(token, safe='')}", params=query)
    assert answer.status_code in EVENT_ANSWERS, (answer.status_code, answer.text)


@FUZZ
@given(
    site=st.text(min_size=1, max_size=30).filter(
        lambda t: "/" not in t and "?" not in t and "#" not in t
    ),
    slot=st.text(min_size=1, max_size=30).filter(
        lambda t: "/" not in t and "?" not in t and "#" not in t
    ),
    fields=decide_fields,
    referer=st.none() | header_text,
)
def test_the_slot_frame_never_fails(
    client: httpx.Client, site: str, slot: str, fields: dict[str, Any], referer: bytes | None
) -> None:
    headers = {"Referer": referer} if referer is not None else {}
    path = f"/v1/slot/{quote(site, safe='')}/{quote(slot, safe='')}.html"
    answer = client.get(path, params=as_query(fields), headers=headers)
    assert answer.status_code < 500, answer.text
