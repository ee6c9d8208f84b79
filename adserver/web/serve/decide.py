"""The decide route: one request per page view, a decision for every slot it names."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import bearer_token
from adserver.delivery import render
from adserver.delivery.decide import DecideRequest, Decision, SiteSpec, UnknownSite, decide
from adserver.delivery.explain import explain
from adserver.services.tokens import principal_for_token
from adserver.tracking import traffic
from adserver.tracking.counters import Asked
from adserver.tracking.tokens import DECISION_CHARS, TokenSigner
from adserver.web.common import ReadyJSON, error, runtime
from adserver.web.serve.params import (
    BadRequest,
    DecideParams,
    parse_decide,
    parse_decide_query,
    parse_query,
)

NO_STORE = {"Cache-Control": "no-store"}
NO_STORE_RAW = (b"cache-control", b"no-store")
_new_tuple = tuple.__new__
#: Errors that reveal nothing about a site are readable from any page, so the tag can log them.
OPEN_CORS = {"Access-Control-Allow-Origin": "*"}


async def decide_endpoint(request: Request) -> Response:
    """The tag's one request per page: a decision for every slot it names."""
    svc = runtime(request)
    query = request.scope["query_string"]
    try:
        if request.method == "POST":
            params = parse_decide(parse_query(query), await request.body())
        else:
            params = parse_decide_query(query)
    except BadRequest as exc:
        return error(400, str(exc), OPEN_CORS)
    now = time.time()
    headers = read_headers(request, _DECIDE_HEADERS)
    user_agent = headers.get(b"user-agent", b"").decode("latin-1")
    explaining = params.explain and await _is_admin(request)
    engine_request = decide_request(request, params, now, user_agent)
    try:
        result = decide(svc.inventory.current, engine_request, svc.rng, explain=explaining)
    except UnknownSite:
        return error(404, f"unknown site {params.site!r}", OPEN_CORS)
    site = result.site
    cors = _cors_headers(headers.get(b"origin"), site)
    if cors is None:
        return error(403, "this page's origin is not one of the site's domains")
    hour = svc.hours.hour(now, site.timezone, site.id)
    site_id = site.id
    decisions: dict[str, orjson.Fragment | None] = {}
    asked: list[Asked] = []
    for name, decision in result.decisions.items():
        if decision is None:
            decisions[name] = None
            slot = site.slots.get(name)
            if slot is not None:
                asked.append((hour, site_id, slot.id, None, None))
        else:
            decisions[name] = orjson.Fragment(decision_json(svc.signer, site, decision, int(now)))
            campaign, creative = decision.campaign, decision.creative
            asked.append((hour, site_id, decision.slot.id, campaign.id, creative.id))
    svc.counters.count(asked)
    svc.audience.record(
        hour,
        site_id,
        result.slot_ids,
        engine_request.device,
        engine_request.country,
        engine_request.path,
        engine_request.keywords,
    )
    answer: dict[str, Any] = {"site": site.key, "decisions": decisions}
    if result.errors:
        answer["errors"] = result.errors
    if explaining:
        answer["explain"] = explain(result, engine_request)
    return ReadyJSON(orjson.dumps(answer), [*cors, NO_STORE_RAW])


def decision_json(signer: TokenSigner, site: SiteSpec, decision: Decision, issued: int) -> bytes:
    """The decision as JSON: its creative's answer, rendered ahead, with this decision's id and
    event token spliced in."""
    token = signer.token(
        decision.raw_id,
        site.id,
        decision.slot.id,
        decision.campaign.id,
        decision.creative.id,
        issued,
    )
    return render.fill(decision.creative.answer, token[:DECISION_CHARS], token)


async def _is_admin(request: Request) -> bool:
    """True for an admin's bearer token: only an admin learns why a page got what it got."""
    token = bearer_token(request.headers)
    if token is None:
        return False
    principal = await runtime(request).run_db(lambda c: principal_for_token(c, token))
    return principal is not None and principal.is_admin


def decide_request(
    request: Request, params: DecideParams, now: float, user_agent: str
) -> DecideRequest:
    """The engine's view of a request: parameters plus what the headers say of the reader.
    Made from all its fields in order, without the named tuple's ``__new__`` (a Python function
    taking keywords: a third of a microsecond on every decide)."""
    fields = (
        params.site,
        params.slots,
        now,
        params.path,
        params.keywords,
        traffic.device_class(user_agent),
        traffic.country(client_host(request)),
        params.frequency,
        params.shown,
    )
    return _new_tuple(DecideRequest, fields)


#: The request headers the decide handler reads.
_DECIDE_HEADERS = frozenset((b"user-agent", b"origin"))


def read_headers(request: Request, names: frozenset[bytes]) -> dict[bytes, bytes]:
    """The request headers of ``names``, first of each name, in one pass over the scope's
    (``request.headers`` builds a mapping, and each of its lookups scans every header)."""
    found: dict[bytes, bytes] = {}
    for name, value in request.scope["headers"]:
        if name in names and name not in found:
            found[name] = value
    return found


def client_host(request: Request) -> str | None:
    """The reader's address (``request.client`` builds a named tuple for it on every call)."""
    client = request.scope.get("client")
    return client[0] if client else None


def _cors_headers(origin: bytes | None, site: SiteSpec) -> list[tuple[bytes, bytes]] | None:
    """CORS for the site's own domains, as raw header lines; None when a page elsewhere asks."""
    if origin is None:
        return []
    try:
        host = (urlsplit(origin.decode("latin-1")).hostname or "").lower()
    except ValueError:  # not a URL at all (``http://[::1``): no site's domain
        return None
    if host not in site.domains:
        return None
    return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]


async def decide_preflight(request: Request) -> Response:
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": request.headers.get("origin", "*"),
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
            "Vary": "Origin",
        },
    )
