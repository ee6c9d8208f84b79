"""The iframe slot: a whole HTML document holding one slot's ad, for pages without script."""

from __future__ import annotations

import time
from html import escape
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from adserver.delivery.decide import UnknownSite, decide
from adserver.web.common import runtime
from adserver.web.serve.decide import NO_STORE, decide_request, decision_json
from adserver.web.serve.params import BadRequest, parse_decide


async def slot_frame(request: Request) -> Response:
    """A whole HTML document holding one slot's ad, for an <iframe> on pages without script."""
    svc = runtime(request)
    site_key = request.path_params["site"]
    slot_name = request.path_params["slot"]
    now = time.time()
    referer = request.headers.get("referer", "")
    try:
        # The path names the site and slot; the query may add the page and keywords only.
        query = {**request.query_params, "site": site_key, "slots": slot_name}
        params = parse_decide(query, b"", defaults={"url": referer})
        user_agent = request.headers.get("user-agent", "")
        result = decide(
            svc.inventory.current, decide_request(request, params, now, user_agent), svc.rng
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
        svc.counters.count([(hour, site.id, slot.id, None, None)])
    else:
        svc.counters.count([(hour, site.id, slot.id, decision.campaign.id, decision.creative.id)])
        context["ad"] = orjson.loads(decision_json(svc.signer, site, decision, int(now)))
    ancestors = " ".join(
        f"http://{d}:* https://{d}:* http://{d} https://{d}" for d in sorted(site.domains)
    )
    return svc.templates.TemplateResponse(
        request,
        "slot/frame.html",
        context,
        headers={**NO_STORE, "Content-Security-Policy": f"frame-ancestors 'self' {ancestors}"},
    )
