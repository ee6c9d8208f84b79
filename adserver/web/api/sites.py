"""``/v1/manage/sites``: a publisher's sites; a site's id in paths is its key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal
from adserver.core.models import utcnow
from adserver.services import sites
from adserver.services.common import Removal
from adserver.web.api.manage import (
    actor_for,
    answer,
    body_of,
    if_match,
    listing,
    managed,
    query_of,
    read,
    write,
)
from adserver.web.api.registry import Operation

PATH = "/v1/manage/sites"


@managed()
async def list_sites(request: Request, principal: Principal) -> Response:
    query = query_of(request, sites.SiteQuery)
    return listing(request, await read(request, lambda c: sites.list_sites(c, query=query)))


@managed()
async def create_site(request: Request, principal: Principal) -> Response:
    data = await body_of(request, sites.SiteCreate)
    site = await write(
        request,
        lambda c: sites.create_site(c, data=data, actor=actor_for(principal), now=utcnow()),
    )
    return answer(site, status=201, location=f"{PATH}/{site.key}")


@managed()
async def get_site(request: Request, principal: Principal) -> Response:
    key = request.path_params["key"]
    return answer(await read(request, lambda c: sites.get_site(c, key=key)))


@managed()
async def update_site(request: Request, principal: Principal) -> Response:
    key = request.path_params["key"]
    expected = if_match(request)
    data = await body_of(request, sites.SiteUpdate)
    site = await write(
        request,
        lambda c: sites.update_site(
            c,
            key=key,
            data=data,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(site)


@managed()
async def delete_site(request: Request, principal: Principal) -> Response:
    key = request.path_params["key"]
    expected = if_match(request)
    removal = await write(
        request,
        lambda c: sites.delete_site(
            c, key=key, expected_version=expected, actor=actor_for(principal), now=utcnow()
        ),
    )
    return answer(removal)


ITEM = PATH + "/{key}"
operations = [
    Operation(
        "GET", PATH, "list_sites", "List sites", list_sites,
        query=sites.SiteQuery, response=sites.SitePublic, many=True, errors=(401, 403, 422),
    ),
    Operation(
        "POST", PATH, "create_site", "Create a site", create_site,
        body=sites.SiteCreate, response=sites.SitePublic, status=201, etag=True,
        errors=(401, 403, 409, 422),
    ),
    Operation(
        "GET", ITEM, "get_site", "Read a site", get_site,
        response=sites.SitePublic, etag=True, errors=(401, 403, 404),
    ),
    Operation(
        "PATCH", ITEM, "update_site", "Change a site's named fields", update_site,
        body=sites.SiteUpdate, response=sites.SitePublic, etag=True,
        errors=(401, 403, 404, 412, 422),
    ),
    Operation(
        "DELETE", ITEM, "delete_site", "Delete a site, or archive one with statistics",
        delete_site, response=Removal, etag=True, errors=(401, 403, 404, 412),
    ),
]  # fmt: skip
