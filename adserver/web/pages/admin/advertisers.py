"""/admin/advertisers: who buys the campaigns, with a way into each one's own dashboard."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.services import advertisers, campaigns
from adserver.services.common import parse
from adserver.services.errors import NotFound
from adserver.web.pages.admin.common import (
    PAGE_SIZE,
    Form,
    actor,
    attempt,
    blank_form,
    done,
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

FIELDS = ("name", "email", "status")


async def advertiser_list(request: Request) -> Response:
    query, chosen = list_query(request, advertisers.AdvertiserQuery, "status")
    page = await read(request, lambda c: advertisers.list_advertisers(c, query=query))
    context = {"page": page, "links": page_links(request, page), "chosen": chosen}
    return render(request, "admin/advertisers/list.html", context, section="advertisers")


def _values(form: Any) -> dict[str, Any]:
    return {name: text(form, name) for name in FIELDS}


async def advertiser_new(request: Request) -> Response:
    form: Form = blank_form()
    if request.method == "POST":
        values = _values(await request.form())
        payload = {"name": values["name"], "email": values["email"]}
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                advertisers.create_advertiser,
                data=parse(advertisers.AdvertiserCreate, payload),
                actor=actor(request),
                now=now(),
            ),
        )
        if isinstance(outcome, advertisers.AdvertiserPublic):
            return done(
                request, f"/admin/advertisers/{outcome.id}", f"Advertiser {outcome.name} created."
            )
        form = outcome
    context = {"form": form, "advertiser": None}
    return render(
        request,
        "admin/advertisers/form.html",
        context,
        section="advertisers",
        status_code=form.status,
    )


async def advertiser_detail(request: Request) -> Response:
    advertiser_id: int = request.path_params["advertiser_id"]
    try:
        advertiser = await read(
            request, lambda c: advertisers.get_advertiser(c, advertiser_id=advertiser_id)
        )
    except NotFound as exc:
        raise not_found(exc) from exc
    stored = {
        "name": advertiser.name,
        "email": advertiser.email,
        "status": advertiser.status,
        "version": advertiser.version,
    }
    form: Form = blank_form(stored)
    if request.method == "POST":
        submitted = await request.form()
        values = {**_values(submitted), "version": advertiser.version}
        payload = {name: values[name] for name in FIELDS if name != "status" or values[name]}
        outcome = await attempt(
            request,
            values,
            FIELDS,
            lambda: partial(
                advertisers.update_advertiser,
                advertiser_id=advertiser_id,
                data=parse(advertisers.AdvertiserUpdate, payload),
                expected_version=version_of(submitted),
                actor=actor(request),
                now=now(),
            ),
        )
        if isinstance(outcome, advertisers.AdvertiserPublic):
            return done(request, f"/admin/advertisers/{advertiser_id}", "Advertiser saved.")
        form = outcome
    query = campaigns.CampaignQuery(advertiser=advertiser_id, limit=PAGE_SIZE)
    their_campaigns = await read(request, lambda c: campaigns.list_campaigns(c, query=query))
    context = {"form": form, "advertiser": advertiser, "campaigns": their_campaigns}
    return render(
        request,
        "admin/advertisers/form.html",
        context,
        section="advertisers",
        status_code=form.status,
    )


async def advertiser_delete(request: Request) -> Response:
    advertiser_id: int = request.path_params["advertiser_id"]
    submitted = await request.form()
    return await remove(
        request,
        partial(
            advertisers.delete_advertiser,
            advertiser_id=advertiser_id,
            expected_version=version_of(submitted),
            actor=actor(request),
            now=now(),
        ),
        here=f"/admin/advertisers/{advertiser_id}",
        listing="/admin/advertisers",
        noun="Advertiser",
    )


routes = [
    Route("/admin/advertisers", advertiser_list, methods=["GET"], name="admin_advertisers"),
    Route(
        "/admin/advertisers/new",
        advertiser_new,
        methods=["GET", "POST"],
        name="admin_advertiser_new",
    ),
    Route(
        "/admin/advertisers/{advertiser_id:int}",
        advertiser_detail,
        methods=["GET", "POST"],
        name="admin_advertiser",
    ),
    Route(
        "/admin/advertisers/{advertiser_id:int}/delete",
        advertiser_delete,
        methods=["POST"],
        name="admin_advertiser_delete",
    ),
]
