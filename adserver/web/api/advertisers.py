"""``/v1/manage/advertisers``: an advertiser token reads only its own advertiser."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal
from adserver.core.models import utcnow
from adserver.services import advertisers
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
    scope_of,
    write,
)
from adserver.web.api.registry import Operation

PATH = "/v1/manage/advertisers"
ITEM = PATH + "/{id:int}"


@managed("token")
async def list_advertisers(request: Request, principal: Principal) -> Response:
    query = query_of(request, advertisers.AdvertiserQuery)
    page = await read(
        request,
        lambda c: advertisers.list_advertisers(c, query=query, scope=scope_of(principal)),
    )
    return listing(request, page)


@managed()
async def create_advertiser(request: Request, principal: Principal) -> Response:
    data = await body_of(request, advertisers.AdvertiserCreate)
    advertiser = await write(
        request,
        lambda c: advertisers.create_advertiser(
            c, data=data, actor=actor_for(principal), now=utcnow()
        ),
    )
    return answer(advertiser, status=201, location=f"{PATH}/{advertiser.id}")


@managed("token")
async def get_advertiser(request: Request, principal: Principal) -> Response:
    advertiser_id = request.path_params["id"]
    advertiser = await read(
        request,
        lambda c: advertisers.get_advertiser(
            c, advertiser_id=advertiser_id, scope=scope_of(principal)
        ),
    )
    return answer(advertiser)


@managed()
async def update_advertiser(request: Request, principal: Principal) -> Response:
    advertiser_id = request.path_params["id"]
    expected = if_match(request)
    data = await body_of(request, advertisers.AdvertiserUpdate)
    advertiser = await write(
        request,
        lambda c: advertisers.update_advertiser(
            c,
            advertiser_id=advertiser_id,
            data=data,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(advertiser)


@managed()
async def delete_advertiser(request: Request, principal: Principal) -> Response:
    advertiser_id = request.path_params["id"]
    expected = if_match(request)
    removal = await write(
        request,
        lambda c: advertisers.delete_advertiser(
            c,
            advertiser_id=advertiser_id,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(removal)


operations = [
    Operation(
        "GET", PATH, "list_advertisers", "List advertisers (an advertiser token: its own)",
        list_advertisers, auth="token", query=advertisers.AdvertiserQuery,
        response=advertisers.AdvertiserPublic, many=True, errors=(401, 422),
    ),
    Operation(
        "POST", PATH, "create_advertiser", "Create an advertiser", create_advertiser,
        body=advertisers.AdvertiserCreate, response=advertisers.AdvertiserPublic, status=201,
        etag=True, errors=(401, 403, 409, 422),
    ),
    Operation(
        "GET", ITEM, "get_advertiser", "Read an advertiser", get_advertiser, auth="token",
        response=advertisers.AdvertiserPublic, etag=True, errors=(401, 404),
    ),
    Operation(
        "PATCH", ITEM, "update_advertiser", "Change an advertiser's named fields",
        update_advertiser, body=advertisers.AdvertiserUpdate,
        response=advertisers.AdvertiserPublic, etag=True, errors=(401, 403, 404, 409, 412, 422),
    ),
    Operation(
        "DELETE", ITEM, "delete_advertiser",
        "Delete an advertiser, or archive one with campaigns, users or tokens (and its "
        "campaigns)", delete_advertiser, response=Removal, etag=True,
        errors=(401, 403, 404, 412),
    ),
]  # fmt: skip
