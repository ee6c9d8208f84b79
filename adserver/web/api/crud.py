"""The five routes of a managed entity (list, create, read, change, delete), built from its
service module's functions: each entity's module says only what differs (its models, its
summaries, the errors it may answer). Writes need an admin token; reads too, unless the entity
is ``scoped``: then any token reads, an advertiser's only its own. Each route is one service
call, so each is ``transacted``: its token check and its work share one worker-thread hop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from adserver.accounts.principal import Principal
from adserver.core.models import utcnow
from adserver.services.common import Schema
from adserver.web.api.manage import (
    Call,
    actor_for,
    answer,
    if_match,
    listing,
    query_of,
    scope_of,
    transacted,
)
from adserver.web.api.registry import Auth, Operation

ServiceCall = Callable[..., Any]


@dataclass(frozen=True)
class AdminEntity:
    """An entity's models and service functions, called with the service layer's keywords."""

    path: str
    #: The item's path parameter (``key`` or ``id``) and its route converter pattern.
    item: str
    #: The service functions' keyword for the item (``key``, ``slot_id`` ...).
    ident: str
    query: type[Schema]
    create: type[Schema]
    update: type[Schema]
    public: type[BaseModel]
    removal: type[BaseModel]
    list_items: ServiceCall
    create_item: ServiceCall
    get_item: ServiceCall
    update_item: ServiceCall
    delete_item: ServiceCall
    #: The object's id in its ``Location``.
    location: Callable[[Any], object]
    #: The creation answer's model, when it shows more than ``public`` (a token's secret).
    created: type[BaseModel] | None = None
    #: Any token may list and read, and the service functions take the caller's ``scope``.
    scoped: bool = False


@dataclass(frozen=True)
class Wording:
    """Operation names, summaries and error statuses, as the OpenAPI document shows them."""

    names: tuple[str, str, str, str, str]
    summaries: tuple[str, str, str, str, str]
    create_errors: tuple[int, ...] = (401, 403, 409, 422)
    update_errors: tuple[int, ...] = (401, 403, 404, 412, 422)


def admin_operations(entity: AdminEntity, wording: Wording) -> list[Operation]:
    """List, create, read, change and delete ``entity``, each through one service call."""
    param = entity.item.split(":")[0]
    reader: Auth = "token" if entity.scoped else "admin"

    def item_of(request: Request) -> dict[str, Any]:
        return {entity.ident: request.path_params[param]}

    def scope(principal: Principal) -> dict[str, Any]:
        return {"scope": scope_of(principal)} if entity.scoped else {}

    @transacted(reader)
    def list_items(call: Call) -> Response:
        query = query_of(call.request, entity.query)
        page = entity.list_items(call.connection, query=query, **scope(call.principal))
        return listing(call.request, page)

    @transacted()
    def create_item(call: Call) -> Response:
        data = call.body_as(entity.create)
        made = entity.create_item(
            call.connection, data=data, actor=actor_for(call.principal), now=utcnow()
        )
        return answer(made, status=201, location=f"{entity.path}/{entity.location(made)}")

    @transacted(reader)
    def get_item(call: Call) -> Response:
        item = {**item_of(call.request), **scope(call.principal)}
        return answer(entity.get_item(call.connection, **item))

    @transacted()
    def update_item(call: Call) -> Response:
        item, expected = item_of(call.request), if_match(call.request)
        data = call.body_as(entity.update)
        changed = entity.update_item(
            call.connection,
            **item,
            data=data,
            expected_version=expected,
            actor=actor_for(call.principal),
            now=utcnow(),
        )
        return answer(changed)

    @transacted()
    def delete_item(call: Call) -> Response:
        item, expected = item_of(call.request), if_match(call.request)
        removal = entity.delete_item(
            call.connection,
            **item,
            expected_version=expected,
            actor=actor_for(call.principal),
            now=utcnow(),
        )
        return answer(removal)

    path, item = entity.path, f"{entity.path}/{{{entity.item}}}"
    names, summaries = wording.names, wording.summaries
    # A scoped read is never forbidden: another advertiser's objects are simply not found.
    forbidden = () if entity.scoped else (403,)
    return [
        Operation(
            "GET", path, names[0], summaries[0], list_items, auth=reader,
            query=entity.query, response=entity.public, many=True,
            errors=(401, *forbidden, 422),
        ),
        Operation(
            "POST", path, names[1], summaries[1], create_item,
            body=entity.create, response=entity.created or entity.public, status=201,
            etag=True, errors=wording.create_errors,
        ),
        Operation(
            "GET", item, names[2], summaries[2], get_item, auth=reader,
            response=entity.public, etag=True, errors=(401, *forbidden, 404),
        ),
        Operation(
            "PATCH", item, names[3], summaries[3], update_item,
            body=entity.update, response=entity.public, etag=True,
            errors=wording.update_errors,
        ),
        Operation(
            "DELETE", item, names[4], summaries[4], delete_item,
            response=entity.removal, etag=True, errors=(401, 403, 404, 412),
        ),
    ]  # fmt: skip
