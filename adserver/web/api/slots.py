"""``/v1/manage/slots``: the named places on a site's pages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal
from adserver.core.models import utcnow
from adserver.services import slots
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

PATH = "/v1/manage/slots"


@managed()
async def list_slots(request: Request, principal: Principal) -> Response:
    query = query_of(request, slots.SlotQuery)
    return listing(request, await read(request, lambda c: slots.list_slots(c, query=query)))


@managed()
async def create_slot(request: Request, principal: Principal) -> Response:
    data = await body_of(request, slots.SlotCreate)
    slot = await write(
        request,
        lambda c: slots.create_slot(c, data=data, actor=actor_for(principal), now=utcnow()),
    )
    return answer(slot, status=201, location=f"{PATH}/{slot.id}")


@managed()
async def get_slot(request: Request, principal: Principal) -> Response:
    slot_id = request.path_params["id"]
    return answer(await read(request, lambda c: slots.get_slot(c, slot_id=slot_id)))


@managed()
async def update_slot(request: Request, principal: Principal) -> Response:
    slot_id = request.path_params["id"]
    expected = if_match(request)
    data = await body_of(request, slots.SlotUpdate)
    slot = await write(
        request,
        lambda c: slots.update_slot(
            c,
            slot_id=slot_id,
            data=data,
            expected_version=expected,
            actor=actor_for(principal),
            now=utcnow(),
        ),
    )
    return answer(slot)


@managed()
async def delete_slot(request: Request, principal: Principal) -> Response:
    slot_id = request.path_params["id"]
    expected = if_match(request)
    removal = await write(
        request,
        lambda c: slots.delete_slot(
            c, slot_id=slot_id, expected_version=expected, actor=actor_for(principal), now=utcnow()
        ),
    )
    return answer(removal)


ITEM = PATH + "/{id:int}"
operations = [
    Operation(
        "GET", PATH, "list_slots", "List slots", list_slots,
        query=slots.SlotQuery, response=slots.SlotPublic, many=True, errors=(401, 403, 422),
    ),
    Operation(
        "POST", PATH, "create_slot", "Create a slot", create_slot,
        body=slots.SlotCreate, response=slots.SlotPublic, status=201, etag=True,
        errors=(401, 403, 409, 422),
    ),
    Operation(
        "GET", ITEM, "get_slot", "Read a slot", get_slot,
        response=slots.SlotPublic, etag=True, errors=(401, 403, 404),
    ),
    Operation(
        "PATCH", ITEM, "update_slot", "Change a slot's named fields", update_slot,
        body=slots.SlotUpdate, response=slots.SlotPublic, etag=True,
        errors=(401, 403, 404, 412, 422),
    ),
    Operation(
        "DELETE", ITEM, "delete_slot", "Delete a slot, or archive one with statistics",
        delete_slot, response=Removal, etag=True, errors=(401, 403, 404, 412),
    ),
]  # fmt: skip
