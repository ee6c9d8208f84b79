"""Event routes: impression and view beacons, and clicks through to the landing page."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adserver.services import creatives
from adserver.tracking.events import EventRecord
from adserver.tracking.intake import classify
from adserver.tracking.tokens import TokenState
from adserver.tracking.writer import StorageUnavailable, WriterStopped
from adserver.web.common import error, runtime
from adserver.web.serve.decide import NO_STORE, client_host, read_headers
from adserver.web.serve.params import parse_query

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
#: The request headers the event handlers read.
_EVENT_HEADERS = frozenset((b"user-agent", b"sec-purpose", b"purpose", b"accept"))


async def beacon_endpoint(request: Request) -> Response:
    """Impression and view beacons: 204 once recorded (valid or not), 4xx for a bad token."""
    svc = runtime(request)
    scope = request.scope
    if scope["method"] == "HEAD":
        # Link checkers and scanners probe with HEAD; only a real fetch is an event.
        return Response(status_code=204, headers=NO_STORE)
    kind = "imp" if scope["path"].startswith("/v1/imp/") else "view"
    headers = read_headers(request, _EVENT_HEADERS)
    state, record = _classify(request, kind, svc.settings.beacon_ttl, headers)
    try:
        await svc.writer.record(record)
    except (StorageUnavailable, WriterStopped):
        # Not stored anywhere: say so, so the browser's beacon is not taken as counted.
        return error(503, "this event cannot be stored right now", {"Retry-After": "60"})
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
    svc = runtime(request)
    state, record = _classify(
        request, "click", svc.settings.click_ttl, read_headers(request, _EVENT_HEADERS)
    )
    if request.method != "HEAD":  # a scanner checking where the link goes clicked nothing
        try:
            await svc.writer.record(record)
            svc.metrics.count_event("click", record.reason)
        except (StorageUnavailable, WriterStopped):
            pass  # the reader still lands on the advertiser's page; the click goes uncounted
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
    svc = runtime(request)
    creative = svc.inventory.current.creatives.get(creative_id)
    if creative is not None:
        return creative.click_url
    return await svc.run_db(lambda c: creatives.landing_url(c, creative_id))


def _classify(
    request: Request, kind: str, ttl: int, headers: dict[bytes, bytes]
) -> tuple[TokenState, EventRecord]:
    svc = runtime(request)
    purpose = headers.get(b"sec-purpose") or headers.get(b"purpose") or b""
    user_agent = headers.get(b"user-agent", b"").decode("latin-1")
    now = time.time()
    return classify(
        svc.signer,
        request.path_params["token"],
        kind=kind,
        now=now,
        ttl=ttl,
        user_agent=user_agent,
        purpose=purpose.decode("latin-1"),
        hour_of=svc.hour_for_site,
        reader=svc.readers.key(client_host(request), user_agent, now),
    )
