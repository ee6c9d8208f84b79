"""``/v1/manage/share-links``: read-only links to one campaign's dashboard.

An advertiser token makes, lists and revokes links to its own campaigns only; DELETE revokes
(the link stops opening at once, the row stays listed as revoked)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.core.models import utcnow
from adserver.services import share_links
from adserver.web.api.manage import (
    Call,
    actor_for,
    answer,
    listing,
    query_of,
    scope_of,
    transacted,
)
from adserver.web.api.registry import Operation
from adserver.web.common import app_of

PATH = "/v1/manage/share-links"


def _keys(request: Request) -> tuple[str, str]:
    settings = app_of(request).settings
    return settings.base_url, settings.secret_key


@transacted("token")
def list_share_links(call: Call) -> Response:
    query = query_of(call.request, share_links.ShareLinkQuery)
    base_url, secret = _keys(call.request)
    page = share_links.list_share_links(
        call.connection,
        query=query,
        advertiser=scope_of(call.principal),
        base_url=base_url,
        secret=secret,
        now=utcnow(),
    )
    return listing(call.request, page)


@transacted("token")
def create_share_link(call: Call) -> Response:
    data = call.body_as(share_links.ShareLinkCreate)
    base_url, secret = _keys(call.request)
    link = share_links.create_share_link(
        call.connection,
        data=data,
        advertiser=scope_of(call.principal),
        actor=actor_for(call.principal),
        base_url=base_url,
        secret=secret,
        now=utcnow(),
    )
    return answer(link, status=201, location=f"{PATH}/{link.id}")


@transacted("token")
def get_share_link(call: Call) -> Response:
    base_url, secret = _keys(call.request)
    link = share_links.get_share_link(
        call.connection,
        link_id=call.request.path_params["id"],
        advertiser=scope_of(call.principal),
        base_url=base_url,
        secret=secret,
        now=utcnow(),
    )
    return answer(link)


@transacted("token")
def revoke_share_link(call: Call) -> Response:
    base_url, secret = _keys(call.request)
    link = share_links.revoke_share_link(
        call.connection,
        link_id=call.request.path_params["id"],
        advertiser=scope_of(call.principal),
        actor=actor_for(call.principal),
        base_url=base_url,
        secret=secret,
        now=utcnow(),
    )
    return answer(link)


ITEM = PATH + "/{id:int}"
operations = [
    Operation(
        "GET", PATH, "list_share_links", "List share links", list_share_links, auth="token",
        query=share_links.ShareLinkQuery, response=share_links.ShareLinkPublic, many=True,
        errors=(401, 422),
    ),
    Operation(
        "POST", PATH, "create_share_link", "Make a read-only link to a campaign's dashboard",
        create_share_link, auth="token", body=share_links.ShareLinkCreate,
        response=share_links.ShareLinkPublic, status=201, errors=(401, 422),
    ),
    Operation(
        "GET", ITEM, "get_share_link", "Read a share link", get_share_link, auth="token",
        response=share_links.ShareLinkPublic, errors=(401, 404),
    ),
    Operation(
        "DELETE", ITEM, "revoke_share_link", "Revoke a share link: it stops opening at once",
        revoke_share_link, auth="token", response=share_links.ShareLinkPublic,
        errors=(401, 404),
    ),
]  # fmt: skip
