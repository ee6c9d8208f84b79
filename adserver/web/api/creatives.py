"""``/v1/manage/creatives``: JSON (image as base64) or a multipart form with the image as a
file. An advertiser token reads its own creatives and writes them for review."""

from __future__ import annotations

import base64
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal
from adserver.core.models import utcnow
from adserver.services import creatives
from adserver.services.common import M, Removal, parse
from adserver.services.errors import ServiceError
from adserver.services.images import MAX_BYTES
from adserver.web.api.manage import (
    MAX_BODY,
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
from adserver.web.common import app_of

PATH = "/v1/manage/creatives"
ITEM = PATH + "/{id:int}"
#: Form fields that are lists, given by repeating the field.
LIST_FIELDS = frozenset({"impression_trackers"})


async def creative_body(request: Request, model: type[M]) -> M:
    """The body as JSON, or as a multipart form whose ``image`` part is the file itself."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await body_of(request, model)
    form = await request.form(max_files=1, max_fields=50, max_part_size=MAX_BODY)
    try:
        data: dict[str, Any] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read(MAX_BYTES + 1)
                if len(content) > MAX_BYTES:
                    raise ServiceError(
                        f"{name}: larger than the {MAX_BYTES} bytes allowed",
                        {name: f"is larger than {MAX_BYTES} bytes"},
                    )
                data[name] = base64.b64encode(content).decode()
            elif name in LIST_FIELDS:
                data.setdefault(name, []).append(value)
            else:
                data[name] = value
    finally:
        await form.close()
    return parse(model, data)


def base_url(request: Request) -> str:
    return app_of(request).settings.base_url


@managed("token")
async def list_creatives(request: Request, principal: Principal) -> Response:
    query = query_of(request, creatives.CreativeQuery)
    page = await read(
        request,
        lambda c: creatives.list_creatives(
            c, query=query, scope=scope_of(principal), base_url=base_url(request)
        ),
    )
    return listing(request, page)


@managed("token")
async def create_creative(request: Request, principal: Principal) -> Response:
    data = await creative_body(request, creatives.CreativeCreate)
    creative = await write(
        request,
        lambda c: creatives.create_creative(
            c,
            data=data,
            actor=actor_for(principal),
            now=utcnow(),
            scope=scope_of(principal),
            base_url=base_url(request),
        ),
    )
    return answer(creative, status=201, location=f"{PATH}/{creative.id}")


@managed("token")
async def get_creative(request: Request, principal: Principal) -> Response:
    creative_id = request.path_params["id"]
    creative = await read(
        request,
        lambda c: creatives.get_creative(
            c, creative_id=creative_id, scope=scope_of(principal), base_url=base_url(request)
        ),
    )
    return answer(creative)


@managed("token")
async def update_creative(request: Request, principal: Principal) -> Response:
    creative_id = request.path_params["id"]
    expected = if_match(request)
    data = await creative_body(request, creatives.CreativeUpdate)
    creative = await write(
        request,
        lambda c: creatives.update_creative(
            c,
            creative_id=creative_id,
            data=data,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
            scope=scope_of(principal),
            base_url=base_url(request),
        ),
    )
    return answer(creative)


@managed("token")
async def delete_creative(request: Request, principal: Principal) -> Response:
    creative_id = request.path_params["id"]
    expected = if_match(request)
    removal = await write(
        request,
        lambda c: creatives.delete_creative(
            c,
            creative_id=creative_id,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
            scope=scope_of(principal),
        ),
    )
    return answer(removal)


operations = [
    Operation(
        "GET", PATH, "list_creatives", "List creatives (an advertiser token: its own)",
        list_creatives, auth="token", query=creatives.CreativeQuery,
        response=creatives.CreativePublic, many=True, errors=(401, 422),
    ),
    Operation(
        "POST", PATH, "create_creative",
        "Create a creative (an advertiser token's waits for review)", create_creative,
        auth="token", body=creatives.CreativeCreate, multipart=True,
        response=creatives.CreativePublic, status=201, etag=True, errors=(401, 422),
    ),
    Operation(
        "GET", ITEM, "get_creative", "Read a creative", get_creative, auth="token",
        response=creatives.CreativePublic, etag=True, errors=(401, 404),
    ),
    Operation(
        "PATCH", ITEM, "update_creative", "Change a creative's named fields",
        update_creative, auth="token", body=creatives.CreativeUpdate, multipart=True,
        response=creatives.CreativePublic, etag=True, errors=(401, 404, 412, 422),
    ),
    Operation(
        "DELETE", ITEM, "delete_creative",
        "Delete a creative that never delivered, or archive one with statistics",
        delete_creative, auth="token", response=Removal, etag=True, errors=(401, 404, 412),
    ),
]  # fmt: skip
