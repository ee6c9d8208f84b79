"""``/v1/manage/campaigns``: an advertiser token reads only its own advertiser's campaigns."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal
from adserver.core.models import utcnow
from adserver.services import campaigns
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

PATH = "/v1/manage/campaigns"
ITEM = PATH + "/{id:int}"


@managed("token")
async def list_campaigns(request: Request, principal: Principal) -> Response:
    query = query_of(request, campaigns.CampaignQuery)
    page = await read(
        request, lambda c: campaigns.list_campaigns(c, query=query, scope=scope_of(principal))
    )
    return listing(request, page)


@managed()
async def create_campaign(request: Request, principal: Principal) -> Response:
    data = await body_of(request, campaigns.CampaignCreate)
    campaign = await write(
        request,
        lambda c: campaigns.create_campaign(c, data=data, actor=actor_for(principal), now=utcnow()),
    )
    return answer(campaign, status=201, location=f"{PATH}/{campaign.id}")


@managed("token")
async def get_campaign(request: Request, principal: Principal) -> Response:
    campaign_id = request.path_params["id"]
    campaign = await read(
        request,
        lambda c: campaigns.get_campaign(c, campaign_id=campaign_id, scope=scope_of(principal)),
    )
    return answer(campaign)


@managed()
async def update_campaign(request: Request, principal: Principal) -> Response:
    campaign_id = request.path_params["id"]
    expected = if_match(request)
    data = await body_of(request, campaigns.CampaignUpdate)
    campaign = await write(
        request,
        lambda c: campaigns.update_campaign(
            c,
            campaign_id=campaign_id,
            data=data,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(campaign)


@managed()
async def delete_campaign(request: Request, principal: Principal) -> Response:
    campaign_id = request.path_params["id"]
    expected = if_match(request)
    removal = await write(
        request,
        lambda c: campaigns.delete_campaign(
            c,
            campaign_id=campaign_id,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(removal)


operations = [
    Operation(
        "GET", PATH, "list_campaigns", "List campaigns (an advertiser token: its own)",
        list_campaigns, auth="token", query=campaigns.CampaignQuery,
        response=campaigns.CampaignPublic, many=True, errors=(401, 422),
    ),
    Operation(
        "POST", PATH, "create_campaign", "Create a campaign", create_campaign,
        body=campaigns.CampaignCreate, response=campaigns.CampaignPublic, status=201,
        etag=True, errors=(401, 403, 422),
    ),
    Operation(
        "GET", ITEM, "get_campaign", "Read a campaign", get_campaign, auth="token",
        response=campaigns.CampaignPublic, etag=True, errors=(401, 404),
    ),
    Operation(
        "PATCH", ITEM, "update_campaign",
        "Change a campaign's named fields (goal, targeting, frequency_cap replaced whole)",
        update_campaign, body=campaigns.CampaignUpdate, response=campaigns.CampaignPublic,
        etag=True, errors=(401, 403, 404, 412, 422),
    ),
    Operation(
        "DELETE", ITEM, "delete_campaign",
        "Delete a campaign that never delivered, or archive one with statistics",
        delete_campaign, response=Removal, etag=True, errors=(401, 403, 404, 412),
    ),
]  # fmt: skip
