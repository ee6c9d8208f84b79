"""Specification of /v1/decide parameter parsing, ``adserver.web.decide_params``."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest
from starlette.requests import Request

from adserver.delivery.decide import DecideRequest, SlotRequest
from adserver.tracking import traffic
from adserver.web.serve.decide import decide_request
from adserver.web.serve.params import BadRequest, parse_decide, parse_query

TRICKY = [
    "",
    "&",
    "&&a=1&&",
    "site=s&slots=top,side",
    "a=1&a=2",
    "a",
    "a=",
    "=b",
    "a==b",
    "q=a+b%20c",
    "url=http%3A%2F%2Fexample.com%2Fnews%2F1.html%3Fx%3D1%26y%3D2",
    "k%C3%A9y=v%C3%A4lue",
    "bad=%ZZ%",
    "half=%E2%82",
    "plus+name=x",
    "raw=\u00e9t\u00e9",
]


def oracle(query: str) -> dict[str, str]:
    """What Starlette's ``request.query_params`` reads, as a plain dict (the last one wins)."""
    return dict(parse_qsl(query, keep_blank_values=True))


@pytest.mark.parametrize("query", TRICKY)
def test_parse_query_reads_what_parse_qsl_reads(query: str) -> None:
    assert parse_query(query.encode("latin-1")) == oracle(query)


def test_parse_query_agrees_with_parse_qsl_on_random_strings() -> None:
    rng = random.Random(7)
    alphabet = "ab=&%+2F0Zé;"
    for _ in range(5000):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        assert parse_query(query.encode("latin-1")) == oracle(query), query


def test_the_same_slots_string_gives_the_same_slots_each_time() -> None:
    first = parse_decide({"site": "s", "slots": "top,side"}, b"")
    again = parse_decide({"site": "s", "slots": "top,side"}, b"")
    assert first.slots == again.slots == (SlotRequest("top"), SlotRequest("side"))


def test_a_bad_slots_string_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(BadRequest, match="not valid"):
            parse_decide({"site": "s", "slots": "top,<script>"}, b"")


def test_a_long_slots_list_is_read_like_a_short_one() -> None:
    names = [f"slot-{n:03}-{'x' * 8}" for n in range(40)]
    params = parse_decide({"site": "s", "slots": ",".join(names)}, b"")
    assert [slot.name for slot in params.slots] == names


def test_the_engine_request_carries_each_parameter_in_its_own_field() -> None:
    params = parse_decide(
        {"site": "s", "slots": "top", "url": "https://news.example/a/b", "keywords": "bikes"},
        b'{"shown": [4], "fc": {"7": [1700000000]}}',
    )
    user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
    request = Request({"type": "http", "client": ("8.8.8.8", 5000), "headers": []})
    built = decide_request(request, params, 1_700_000_100.0, user_agent)
    expected = DecideRequest(
        site="s",
        slots=(SlotRequest("top"),),
        now=1_700_000_100.0,
        path="/a/b",
        keywords=frozenset({"bikes"}),
        device="mobile",
        country=traffic.country("8.8.8.8"),
        frequency={7: (1_700_000_000.0,)},
        shown=frozenset({4}),
    )
    assert type(built) is DecideRequest
    assert built._asdict() == expected._asdict()
