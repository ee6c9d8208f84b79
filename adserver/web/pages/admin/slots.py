"""/admin/slots: the places on a site's pages, with the tag to paste and a live preview."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.delivery.decide import DecideRequest, SlotRequest, UnknownSite, decide
from adserver.delivery.embed import copy_ready_tag
from adserver.services import sites, slots
from adserver.services.common import parse
from adserver.services.errors import NotFound, ServiceError
from adserver.web.common import app_of, runtime
from adserver.web.pages.admin.common import (
    PAGE_SIZE,
    Form,
    actor,
    attempt,
    blank_form,
    done,
    filters,
    lines,
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
    chosen = filters(request, "site", "status", "after")
    try:
        query = parse(slots.SlotQuery, {"limit": PAGE_SIZE, **chosen})
    except ServiceError:
        query = slots.SlotQuery(limit=PAGE_SIZE)
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


async def _serving_now(request: Request, slot: slots.SlotPublic) -> Preview | None:
    """What the slot would serve a reader now, drawn by the engine from this process's
    inventory like any decision, but with no token, count or bill: a preview is not a view."""
    svc = runtime(request)
    ask = DecideRequest(site=slot.site, slots=(SlotRequest(slot.name),), now=time.time())
    try:
        decision = decide(svc.inventory.current, ask, svc.rng).decisions.get(slot.name)
    except UnknownSite:
        return None
    if decision is None:
        return None
    return await preview_of(request, decision.creative.id)


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
