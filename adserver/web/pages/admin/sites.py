"""/admin/sites: the publisher's web sites, each with its slots."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.services import sites, slots
from adserver.services.common import parse
from adserver.services.errors import NotFound
from adserver.services.paging import Page
from adserver.web.pages.admin.common import (
    PAGE_SIZE,
    Form,
    actor,
    attempt,
    blank_form,
    done,
    lines,
    list_query,
    not_found,
    now,
    page_links,
    read,
    remove,
    render,
    text,
    version_of,
)

FIELDS = ("key", "name", "domains", "timezone", "currency", "status")


async def site_list(request: Request) -> Response:
    query, chosen = list_query(request, sites.SiteQuery, "status")
    page: Page[sites.SitePublic] = await read(request, lambda c: sites.list_sites(c, query=query))
    context = {"page": page, "links": page_links(request, page), "status": chosen.get("status")}
    return render(request, "admin/sites/list.html", context, section="sites")


def _values(form: Any) -> dict[str, Any]:
    return {name: text(form, name) for name in FIELDS}


def _payload(values: dict[str, Any], *, new: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": values["name"],
        "domains": lines(values["domains"]),
        "timezone": values["timezone"],
        "currency": values["currency"].upper(),
    }
    if new:
        payload["key"] = values["key"]
    elif values["status"]:
        payload["status"] = values["status"]
    return payload


async def site_new(request: Request) -> Response:
    form: Form = blank_form({"timezone": "UTC", "currency": "USD"})
    if request.method == "POST":
        values = _values(await request.form())
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                sites.create_site,
                data=parse(sites.SiteCreate, _payload(values, new=True)),
                actor=actor(request),
                now=now(),
            ),
        )
        if isinstance(outcome, sites.SitePublic):
            return done(request, f"/admin/sites/{outcome.key}", f"Site {outcome.name} created.")
        form = outcome
    return render(
        request,
        "admin/sites/form.html",
        {"form": form, "site": None},
        section="sites",
        status_code=form.status,
    )


def _stored(site: sites.SitePublic) -> dict[str, Any]:
    return {
        "key": site.key,
        "name": site.name,
        "domains": "\n".join(site.domains),
        "timezone": site.timezone,
        "currency": site.currency,
        "status": site.status,
        "version": site.version,
    }


async def site_detail(request: Request) -> Response:
    key = request.path_params["key"]
    try:
        site = await read(request, lambda c: sites.get_site(c, key=key))
    except NotFound as exc:
        raise not_found(exc) from exc
    form: Form = blank_form(_stored(site))
    if request.method == "POST":
        submitted = await request.form()
        values = {**_values(submitted), "key": key, "version": site.version}
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                sites.update_site,
                key=key,
                data=parse(sites.SiteUpdate, _payload(values, new=False)),
                expected_version=version_of(submitted),
                actor=actor(request),
                now=now(),
            ),
        )
        if isinstance(outcome, sites.SitePublic):
            return done(request, f"/admin/sites/{key}", "Site saved.")
        form = outcome
    query = slots.SlotQuery(site=key, limit=PAGE_SIZE)
    site_slots = await read(request, lambda c: slots.list_slots(c, query=query))
    context = {"form": form, "site": site, "slots": site_slots}
    return render(
        request, "admin/sites/form.html", context, section="sites", status_code=form.status
    )


async def site_delete(request: Request) -> Response:
    key = request.path_params["key"]
    submitted = await request.form()
    return await remove(
        request,
        partial(
            sites.delete_site,
            key=key,
            expected_version=version_of(submitted),
            actor=actor(request),
            now=now(),
        ),
        here=f"/admin/sites/{key}",
        listing="/admin/sites",
        noun="Site",
    )


routes = [
    Route("/admin/sites", site_list, methods=["GET"], name="admin_sites"),
    Route("/admin/sites/new", site_new, methods=["GET", "POST"], name="admin_site_new"),
    Route("/admin/sites/{key}", site_detail, methods=["GET", "POST"], name="admin_site"),
    Route("/admin/sites/{key}/delete", site_delete, methods=["POST"], name="admin_site_delete"),
]
