"""Public routes: decisions, beacons, clicks, the iframe slot, creative images and the tag."""

from __future__ import annotations

import time
from html import escape
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from adserver import render, traffic
from adserver.counters import Served
from adserver.decide import DecideRequest, Decision, SiteSpec, UnknownSite, decide
from adserver.events import EventRecord
from adserver.models import Creative, table
from adserver.tokens import DECISION_CHARS, TokenSigner, TokenState
from adserver.web.common import ReadyJSON, error, services
from adserver.web.decide_params import (
    BadRequest,
    DecideParams,
    parse_decide,
    parse_decide_query,
    parse_query,
)

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
CREATIVES = table(Creative)
NO_STORE = {"Cache-Control": "no-store"}
NO_STORE_RAW = (b"cache-control", b"no-store")
#: Errors that reveal nothing about a site are readable from any page, so the tag can log them.
OPEN_CORS = {"Access-Control-Allow-Origin": "*"}


async def decide_endpoint(request: Request) -> Response:
    """The tag's one request per page: a decision for every slot it names."""
    svc = services(request)
    query = request.scope["query_string"]
    try:
        if request.method == "POST":
            params = parse_decide(parse_query(query), await request.body())
        else:
            params = parse_decide_query(query)
    except BadRequest as exc:
        return error(400, str(exc), OPEN_CORS)
    now = time.time()
    headers = _headers(request, _DECIDE_HEADERS)
    user_agent = headers.get(b"user-agent", b"").decode("latin-1")
    try:
        result = decide(
            svc.inventory.current, _decide_request(request, params, now, user_agent), svc.rng
        )
    except UnknownSite:
        return error(404, f"unknown site {params.site!r}", OPEN_CORS)
    site = result.site
    cors = _cors_headers(headers.get(b"origin"), site)
    if cors is None:
        return error(403, "this page's origin is not one of the site's domains")
    decisions: dict[str, orjson.Fragment | None] = {}
    served: list[Served] = []
    for name, decision in result.decisions.items():
        if decision is None:
            decisions[name] = None
            slot = site.slots.get(name)
            if slot is not None:
                served.append((slot.id, None, None))
        else:
            decisions[name] = orjson.Fragment(_answer(svc.signer, site, decision, int(now)))
            served.append((decision.slot.id, decision.campaign.id, decision.creative.id))
    svc.counters.count(svc.hours.hour(now, site.timezone, site.id), site.id, served)
    answer: dict[str, Any] = {"site": site.key, "decisions": decisions}
    if result.errors:
        answer["errors"] = result.errors
    return ReadyJSON(orjson.dumps(answer), [*cors, NO_STORE_RAW])


def _answer(signer: TokenSigner, site: SiteSpec, decision: Decision, issued: int) -> bytes:
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


def _decide_request(
    request: Request, params: DecideParams, now: float, user_agent: str
) -> DecideRequest:
    """The engine's view of a request: parameters plus what the headers say of the reader."""
    return DecideRequest(
        site=params.site,
        slots=params.slots,
        now=now,
        path=params.path,
        keywords=params.keywords,
        device=traffic.device_class(user_agent),
        country=traffic.country(_client_host(request)),
        frequency=params.frequency,
    )


#: The request headers the decide and event handlers read.
_DECIDE_HEADERS = frozenset((b"user-agent", b"origin"))
_EVENT_HEADERS = frozenset((b"user-agent", b"sec-purpose", b"purpose", b"accept"))


def _headers(request: Request, names: frozenset[bytes]) -> dict[bytes, bytes]:
    """The request headers of ``names``, first of each name, in one pass over the scope's
    (``request.headers`` builds a mapping, and each of its lookups scans every header)."""
    found: dict[bytes, bytes] = {}
    for name, value in request.scope["headers"]:
        if name in names and name not in found:
            found[name] = value
    return found


def _client_host(request: Request) -> str | None:
    """The reader's address (``request.client`` builds a named tuple for it on every call)."""
    client = request.scope.get("client")
    return client[0] if client else None


def _cors_headers(origin: bytes | None, site: SiteSpec) -> list[tuple[bytes, bytes]] | None:
    """CORS for the site's own domains, as raw header lines; None when a page elsewhere asks."""
    if origin is None:
        return []
    host = (urlsplit(origin.decode("latin-1")).hostname or "").lower()
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


async def beacon_endpoint(request: Request) -> Response:
    """Impression and view beacons: 204 once recorded (valid or not), 4xx for a bad token."""
    svc = services(request)
    scope = request.scope
    kind = "imp" if scope["path"].startswith("/v1/imp/") else "view"
    headers = _headers(request, _EVENT_HEADERS)
    state, record = _classify(request, kind, svc.settings.beacon_ttl, headers)
    await svc.writer.record(record)
    svc.metrics.count_event(kind, record.reason)
    if state is TokenState.FORGED:
        return error(403, "this beacon's token is not valid")
    if state is TokenState.EXPIRED:
        return error(410, "this beacon's token has expired")
    query = scope["query_string"]
    if (query and parse_query(query).get("img")) or headers.get(b"accept", b"").startswith(
        b"image/"
    ):
        return Response(GIF, media_type="image/gif", headers=NO_STORE)
    return Response(status_code=204, headers=NO_STORE)


async def click_endpoint(request: Request) -> Response:
    """Send the reader to the creative's stored landing URL, never one from the request."""
    svc = services(request)
    state, record = _classify(
        request, "click", svc.settings.click_ttl, _headers(request, _EVENT_HEADERS)
    )
    await svc.writer.record(record)
    svc.metrics.count_event("click", record.reason)
    landing = (
        None if state is TokenState.FORGED else await _landing_url(request, record.creative_id)
    )
    if landing is None:
        return HTMLResponse(
            "<!doctype html><title>Ad link not valid</title><p>This ad link is not valid. "
            '<a href="javascript:history.back()">Go back</a></p>',
            status_code=400 if state is TokenState.FORGED else 404,
        )
    return RedirectResponse(landing, status_code=302, headers=NO_STORE)


async def _landing_url(request: Request, creative_id: int) -> str | None:
    svc = services(request)
    creative = svc.inventory.current.creatives.get(creative_id)
    if creative is not None:
        return creative.click_url
    row = await svc.run_db(
        lambda c: c.execute(
            select(CREATIVES.c.click_url).where(CREATIVES.c.id == creative_id)
        ).scalar()
    )
    return str(row) if row else None


def _classify(
    request: Request, kind: str, ttl: int, headers: dict[bytes, bytes]
) -> tuple[TokenState, EventRecord]:
    svc = services(request)
    now = time.time()
    verified = svc.signer.verify(request.path_params["token"], now=int(now), ttl=ttl)
    claims = verified.claims
    reason: str | None = None
    purpose = headers.get(b"sec-purpose") or headers.get(b"purpose") or b""
    if verified.state is TokenState.FORGED:
        reason = "forged"
    elif verified.state is TokenState.EXPIRED:
        reason = "expired"
    elif traffic.is_prefetch(purpose.decode("latin-1")):
        reason = "prefetch"
    elif traffic.is_bot(headers.get(b"user-agent", b"").decode("latin-1")):
        reason = "bot"
    site_id = claims.site_id if claims else 0
    record = EventRecord.new(
        decision_id=claims.decision_id if claims else "",
        kind=kind,
        at=int(now),
        hour=svc.hour_for_site(site_id, now),
        site_id=site_id,
        slot_id=claims.slot_id if claims else 0,
        campaign_id=claims.campaign_id if claims else 0,
        creative_id=claims.creative_id if claims else 0,
        reason=reason,
    )
    return verified.state, record


async def slot_frame(request: Request) -> Response:
    """A whole HTML document holding one slot's ad, for an <iframe> on pages without script."""
    svc = services(request)
    site_key = request.path_params["site"]
    slot_name = request.path_params["slot"]
    now = time.time()
    referer = request.headers.get("referer", "")
    try:
        params = parse_decide(
            request.query_params,
            b"",
            defaults={"site": site_key, "slots": slot_name, "url": referer},
        )
        user_agent = request.headers.get("user-agent", "")
        result = decide(
            svc.inventory.current, _decide_request(request, params, now, user_agent), svc.rng
        )
    except BadRequest as exc:
        return HTMLResponse(f"<!doctype html><title>Bad request</title><p>{escape(str(exc))}", 400)
    except UnknownSite:
        return HTMLResponse("<!doctype html><title>Unknown site</title>", 404)
    if result.errors:
        return HTMLResponse("<!doctype html><title>Unknown slot</title>", 404)
    decision = result.decisions[slot_name]
    site = result.site
    hour = svc.hours.hour(now, site.timezone, site.id)
    slot = site.slots[slot_name]
    context: dict[str, Any] = {"ad": None, "fallback": slot.fallback_html}
    if decision is None:
        svc.counters.count(hour, site.id, [(slot.id, None, None)])
    else:
        svc.counters.count(hour, site.id, [(slot.id, decision.campaign.id, decision.creative.id)])
        context["ad"] = orjson.loads(_answer(svc.signer, site, decision, int(now)))
    ancestors = " ".join(
        f"http://{d}:* https://{d}:* http://{d} https://{d}" for d in sorted(site.domains)
    )
    return svc.templates.TemplateResponse(
        request,
        "slot/frame.html",
        context,
        headers={**NO_STORE, "Content-Security-Policy": f"frame-ancestors 'self' {ancestors}"},
    )


async def asset(request: Request) -> Response:
    """A creative's image; its URL carries a version, so browsers may keep it for a year."""
    svc = services(request)
    try:
        creative_id = int(request.path_params["creative_id"])
    except ValueError:
        return error(404, "no such image")
    row = await svc.run_db(
        lambda c: c.execute(
            select(CREATIVES.c.image, CREATIVES.c.image_type).where(CREATIVES.c.id == creative_id)
        ).first()
    )
    if row is None or row.image is None:
        return error(404, "no such image")
    return Response(
        row.image,
        media_type=row.image_type or "application/octet-stream",
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def tag_js(request: Request) -> Response:
    tag = services(request).tag
    if request.headers.get("if-none-match") == tag.etag:
        return Response(status_code=304, headers=tag.headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            tag.gzipped,
            media_type="application/javascript",
            headers={**tag.headers, "Content-Encoding": "gzip"},
        )
    return Response(tag.source, media_type="application/javascript", headers=tag.headers)


routes = [
    Route("/v1/decide", decide_endpoint, methods=["GET", "POST"], name="decide"),
    Route("/v1/decide", decide_preflight, methods=["OPTIONS"], name="decide_preflight"),
    Route("/v1/imp/{token}", beacon_endpoint, methods=["GET", "POST"], name="impression"),
    Route("/v1/view/{token}", beacon_endpoint, methods=["GET", "POST"], name="view"),
    Route("/v1/click/{token}", click_endpoint, methods=["GET"], name="click"),
    Route("/v1/slot/{site}/{slot}.html", slot_frame, methods=["GET"], name="slot_frame"),
    Route("/v1/asset/{creative_id}", asset, methods=["GET"], name="asset"),
    Route("/tag.js", tag_js, methods=["GET"], name="tag"),
]
