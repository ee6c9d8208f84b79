"""/admin/slots: the places on a site's pages, with the tag to paste and a live preview."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.core.db import inventory_version
from adserver.delivery.decide import DecideRequest, SlotRequest, UnknownSite, decide
from adserver.delivery.embed import copy_ready_tag
from adserver.delivery.explain import explain
from adserver.services import sites, slots
from adserver.services.common import parse
from adserver.services.errors import NotFound
from adserver.web.common import app_of, runtime
from adserver.web.pages.admin.common import (
    Form,
    actor,
    attempt,
    blank_form,
    done,
    lines,
    list_query,
    not_found,
    now,
    optional,
    page_links,
    read,
    remove,
    render,
    text,
    version_of,
)
from adserver.web.pages.admin.previews import Preview, preview_of

FIELDS = ("site", "name", "sizes", "fallback_html", "status")


async def _site_choices(request: Request) -> list[tuple[str, str]]:
    query = sites.SiteQuery(limit=1000, status="active")
    page = await read(request, lambda c: sites.list_sites(c, query=query))
    return [(site.key, f"{site.name} ({site.key})") for site in page.items]


async def slot_list(request: Request) -> Response:
    query, chosen = list_query(request, slots.SlotQuery, "site", "status")
    page = await read(request, lambda c: slots.list_slots(c, query=query))
    context = {
        "page": page,
        "links": page_links(request, page),
        "chosen": chosen,
        "site_choices": await _site_choices(request),
    }
    return render(request, "admin/slots/list.html", context, section="slots")


def _values(form: Any) -> dict[str, Any]:
    return {name: text(form, name) for name in FIELDS}


async def slot_new(request: Request) -> Response:
    form: Form = blank_form({"site": request.query_params.get("site", "")})
    if request.method == "POST":
        submitted = await request.form()
        values = _values(submitted)
        payload = {
            "site": values["site"],
            "name": values["name"],
            "sizes": lines(values["sizes"]),
            "fallback_html": optional(submitted, "fallback_html"),
        }
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                slots.create_slot,
                data=parse(slots.SlotCreate, payload),
                actor=actor(request),
                now=now(),
            ),
        )
        if isinstance(outcome, slots.SlotPublic):
            created = f"Slot {outcome.name} created: paste its tag below."
            return done(request, f"/admin/slots/{outcome.id}", created)
        form = outcome
    context = {"form": form, "slot": None, "site_choices": await _site_choices(request)}
    return render(
        request, "admin/slots/form.html", context, section="slots", status_code=form.status
    )


def _stored(slot: slots.SlotPublic) -> dict[str, Any]:
    return {
        "site": slot.site,
        "name": slot.name,
        "sizes": "\n".join(slot.sizes),
        "fallback_html": slot.fallback_html or "",
        "status": slot.status,
        "version": slot.version,
    }


def _slot_id(request: Request) -> int:
    slot_id: int = request.path_params["slot_id"]
    return slot_id


async def _get_slot(request: Request, slot_id: int) -> slots.SlotPublic:
    try:
        return await read(request, lambda c: slots.get_slot(c, slot_id=slot_id))
    except NotFound as exc:
        raise not_found(exc) from exc


async def slot_detail(request: Request) -> Response:
    slot_id = _slot_id(request)
    slot = await _get_slot(request, slot_id)
    form: Form = blank_form(_stored(slot))
    if request.method == "POST":
        submitted = await request.form()
        values = {
            **_values(submitted),
            "site": slot.site,
            "name": slot.name,
            "version": slot.version,
        }
        payload = {
            "sizes": lines(values["sizes"]),
            "fallback_html": optional(submitted, "fallback_html"),
            "status": values["status"] or slot.status,
        }
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                slots.update_slot,
                slot_id=slot_id,
                data=parse(slots.SlotUpdate, payload),
                expected_version=version_of(submitted),
                actor=actor(request),
                now=now(),
            ),
        )
        if isinstance(outcome, slots.SlotPublic):
            return done(request, f"/admin/slots/{slot_id}", "Slot saved.")
        form = outcome
    context = {
        "form": form,
        "slot": slot,
        "tags": copy_ready_tag(
            base_url=app_of(request).settings.base_url,
            site_key=slot.site,
            slot_name=slot.name,
            sizes=slot.sizes,
        ),
        "preview": await _serving_now(request, slot),
    }
    return render(
        request, "admin/slots/form.html", context, section="slots", status_code=form.status
    )


#: The engine's reasons for passing a campaign over, as a publisher reads them.
REASONS = {
    "paused": "paused",
    "archived": "archived",
    "pending_approval": "its creatives wait for approval",
    "not_started": "its flight has not started",
    "ended": "its flight has ended",
    "goal_reached": "its goal is reached",
    "budget_spent": "its budget is spent",
    "paced": "held back by even pacing",
    "capped": "this reader reached its frequency cap",
    "targeting_path": "this page path is not targeted",
    "targeting_keyword": "these keywords are not targeted",
    "targeting_device": "this device is not targeted",
    "targeting_country": "this country is not targeted",
    "targeting_day": "not targeted on this day",
    "targeting_hour": "not targeted at this hour",
    "no_fitting_creative": "no creative of it fits the slot's sizes",
    "page_rule": "a page rule (roadblock, competitive label, once per page)",
    "lower_tier": "a campaign of a higher tier won",
    "lost_draw": "another campaign won the draw",
}
DEVICES = ("desktop", "mobile", "tablet")


@dataclass(frozen=True)
class ServingNow:
    """The slot's live preview: the reader it was drawn for, the creative drawn (if any) and
    every campaign booked on the slot with why it was or was not chosen."""

    reader: dict[str, str]
    preview: Preview | None
    campaigns: list[dict[str, Any]]
    #: The latest changes have not reached this process's serving snapshot yet.
    catching_up: bool = False


def _reader(request: Request) -> dict[str, str]:
    """The reader to preview for, from the query string; what does not parse is left out."""
    params = request.query_params
    path = params.get("path", "").strip()[:500]
    country = params.get("country", "").strip().upper()
    device = params.get("device", "")
    return {
        "path": path if path.startswith("/") else "/",
        "keywords": ", ".join(lines(params.get("keywords", "")[:500])),
        "device": device if device in DEVICES else "",
        "country": country if len(country) == 2 and country.isalpha() else "",
    }


async def _serving_now(request: Request, slot: slots.SlotPublic) -> ServingNow:
    """What the slot would serve that reader now, drawn by the engine from this process's
    inventory like any decision, but with no token, count or bill: a preview is not a view."""
    svc = runtime(request)
    reader = _reader(request)
    ask = DecideRequest(
        site=slot.site,
        slots=(SlotRequest(slot.name),),
        now=time.time(),
        path=reader["path"],
        keywords=frozenset(k.lower() for k in lines(reader["keywords"])),
        device=reader["device"] or None,
        country=reader["country"] or None,
    )
    snapshot = svc.inventory.current
    catching_up = await read(request, inventory_version) != snapshot.version
    try:
        result = decide(snapshot, ask, svc.rng, explain=True)
    except UnknownSite:
        return ServingNow(reader, None, [], catching_up)
    booked = [
        {**entry, "why": REASONS.get(entry["reason"] or "", entry["reason"])}
        for entry in explain(result, ask).get(slot.name, [])
    ]
    decision = result.decisions.get(slot.name)
    preview = None if decision is None else await preview_of(request, decision.creative.id)
    return ServingNow(reader, preview, booked, catching_up)


async def slot_delete(request: Request) -> Response:
    slot_id = _slot_id(request)
    submitted = await request.form()
    return await remove(
        request,
        partial(
            slots.delete_slot,
            slot_id=slot_id,
            expected_version=version_of(submitted),
            actor=actor(request),
            now=now(),
        ),
        here=f"/admin/slots/{slot_id}",
        listing="/admin/slots",
        noun="Slot",
    )


routes = [
    Route("/admin/slots", slot_list, methods=["GET"], name="admin_slots"),
    Route("/admin/slots/new", slot_new, methods=["GET", "POST"], name="admin_slot_new"),
    Route("/admin/slots/{slot_id:int}", slot_detail, methods=["GET", "POST"], name="admin_slot"),
    Route(
        "/admin/slots/{slot_id:int}/delete",
        slot_delete,
        methods=["POST"],
        name="admin_slot_delete",
    ),
]
